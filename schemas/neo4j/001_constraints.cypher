// The graph's keys. Applied by `hsc schema apply` and by hsc-enrich at start;
// each statement is idempotent. One statement per `;`.
CREATE CONSTRAINT content_id IF NOT EXISTS FOR (c:Content) REQUIRE c.id IS UNIQUE;
CREATE CONSTRAINT genre_name IF NOT EXISTS FOR (g:Genre) REQUIRE g.name IS UNIQUE;
CREATE CONSTRAINT theme_name IF NOT EXISTS FOR (t:Theme) REQUIRE t.name IS UNIQUE;
CREATE CONSTRAINT mood_name IF NOT EXISTS FOR (m:Mood) REQUIRE m.name IS UNIQUE;
