/*
 * Builds librdkafka configurations from hsc_config: brokers and client id,
 * hsc's defaults for the role, then the user's [rdkafka] pass-through
 * sections; and routes librdkafka's logs and errors into hsc's log.
 */
#include "kafka.h"

#include "log.h"

struct set_ctx {
    rd_kafka_conf_t *conf;
};

static int set_prop(void *arg, const char *name, const char *value, hsc_err *err)
{
    struct set_ctx *c = arg;
    char errstr[512];
    if (rd_kafka_conf_set(c->conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return hsc_err_set(err, HSC_ECONFIG, "%s", errstr);
    return HSC_OK;
}

/*
 * A property from the user's [rdkafka*] sections: refused if it loads code or
 * runs a command (config.c refuses it at load time; this holds for any other
 * way into the pass-through table).
 */
static int set_user_prop(void *arg, const char *name, const char *value, hsc_err *err)
{
    const char *why = hsc_config_rdkafka_refused(name);
    if (why)
        return hsc_err_set(err, HSC_ECONFIG, "refused: this librdkafka property %s", why);
    return set_prop(arg, name, value, err);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum hsc_log_level l = level <= 3   ? HSC_LOG_ERROR
                           : level <= 4 ? HSC_LOG_WARN
                           : level <= 6 ? HSC_LOG_INFO
                                        : HSC_LOG_DEBUG;
    hsc_log(l, "librdkafka", "facility", fac, "detail", buf, "client", rd_kafka_name(rk), NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    /* Most errors are transient and librdkafka retries them itself; fatal ones
     * (e.g. idempotence state lost) mean the handle is unusable. */
    int fatal = (err == RD_KAFKA_RESP_ERR__FATAL);
    hsc_log(fatal ? HSC_LOG_ERROR : HSC_LOG_WARN, "kafka error", "error",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason, NULL);
    (void)rk;
    (void)opaque;
}

rd_kafka_conf_t *hsc_kafka_conf(const hsc_config *cfg, const char *role,
                                const char *const *defaults, hsc_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct set_ctx c = {conf};
    char section[32];
    snprintf(section, sizeof(section), "rdkafka.%s", role);
    if (set_prop(&c, "bootstrap.servers", hsc_config_str(cfg, "kafka.brokers"), err) ||
        set_prop(&c, "client.id", hsc_config_str(cfg, "kafka.client_id"), err)) {
        hsc_err_prefix(err, "kafka.brokers/client_id: ");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* hsc's defaults first, so that the user's [rdkafka] settings override them. */
    for (size_t i = 0; defaults && defaults[i]; i += 2) {
        if (set_prop(&c, defaults[i], defaults[i + 1], err)) {
            hsc_err_prefix(err, "%s: ", defaults[i]);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (hsc_config_each_passthrough(cfg, "rdkafka", set_user_prop, &c, err) ||
        hsc_config_each_passthrough(cfg, section, set_user_prop, &c, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    return conf;
}
