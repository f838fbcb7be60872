/*
 * hsc sample's vocabulary: the genres, themes and moods its synthetic titles
 * draw from. The benchmarks build their catalogues from the same words, so
 * what they measure is shaped like the demo's data; one list keeps them so.
 */
#ifndef HSC_CLI_SAMPLE_VOCAB_H
#define HSC_CLI_SAMPLE_VOCAB_H

/* How many words each list holds. */
enum { HSC_SAMPLE_NGENRES = 12, HSC_SAMPLE_NTHEMES = 12, HSC_SAMPLE_NMOODS = 6 };

/* The genres, in the order hsc sample's embedding directions follow. */
extern const char *const hsc_sample_genres[HSC_SAMPLE_NGENRES];

/* The themes (several are keywords hsc-enrich's vocabulary finds). */
extern const char *const hsc_sample_themes[HSC_SAMPLE_NTHEMES];

/* The moods. */
extern const char *const hsc_sample_moods[HSC_SAMPLE_NMOODS];

#endif
