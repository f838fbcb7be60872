/* hsc sample's vocabulary (sample_vocab.h), shared with the benchmarks. */
#include "sample_vocab.h"

const char *const hsc_sample_genres[HSC_SAMPLE_NGENRES] = {
    "science fiction", "horror",    "comedy",  "drama", "romance", "thriller",
    "documentary",     "animation", "fantasy", "crime", "action",  "family"};

const char *const hsc_sample_themes[HSC_SAMPLE_NTHEMES] = {"space",
                                                           "time travel",
                                                           "friendship",
                                                           "revenge",
                                                           "love",
                                                           "survival",
                                                           "coming of age",
                                                           "heist",
                                                           "war",
                                                           "family",
                                                           "artificial intelligence",
                                                           "haunting"};

const char *const hsc_sample_moods[HSC_SAMPLE_NMOODS] = {"dark",      "uplifting",   "tense",
                                                         "whimsical", "melancholic", "funny"};
