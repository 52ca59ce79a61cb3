/* Fuzz target: a node's config file (config_load_file: `key = value`
 * settings, comments, quotes, `[rule PATTERN]` sections and their keys),
 * loaded for an edge and for a shield. A file is written by people:
 * whatever it holds must load or be refused with a message naming the
 * file (and the line, for what a line says), never crash or leave half
 * of its rules behind.
 *
 * The loader takes a path, so the input is written to one file in a
 * directory of this process made at the first call (the same path every
 * time). Checked: an error names the file, a line number in it is a line
 * of the file, and no rule is kept; a loaded rule finishes cleanly and
 * prints (`--check-config`) as keys that parse back to the same rule; the
 * rules match keys (config_rule_for_key) without trouble. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[] = "/tmp/fuzz-config-XXXXXX", file[sizeof dir + 16];

static void remove_file(void)
{
    unlink(file);
    rmdir(dir);
}

static const char *file_path(void)
{
    if (!file[0]) {
        if (!mkdtemp(dir))
            abort();
        snprintf(file, sizeof file, "%s/node.conf", dir);
        atexit(remove_file);
    }
    return file;
}

static char *print_rule(const policy_rule_t *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        abort();
    config_rule_print(m, r);
    fclose(m);
    return text;
}

/* The rule's printed settings (those not at their default) set on a rule
 * of the same pattern give the same rule: what `--check-config` shows
 * can be pasted back into a file. */
static void round_trip(const policy_rule_t *r)
{
    char err[512];
    if (config_rule_finish(r, err, sizeof err))
        abort(); /* the loader ran the same checks */
    char *text = print_rule(r);
    policy_rule_t again;
    policy_rule_defaults(&again);
    if (config_rule_parse_pattern(&again, r->pattern, err, sizeof err)) {
        fprintf(stderr, "pattern '%s' does not parse again: %s\n", r->pattern, err);
        abort();
    }
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            abort(); /* every printed line ends */
        *nl = '\0';
        char *eq = strstr(line, " = ");
        if (line[0] == '[' || line[0] == '#' || strstr(line, "  # default"))
            continue;
        if (!eq)
            abort();
        *eq = '\0';
        if (config_rule_set(&again, line, eq + 3, err, sizeof err)) {
            fprintf(stderr, "printed '%s = %s' does not parse again: %s\n", line, eq + 3, err);
            abort();
        }
    }
    if (config_rule_finish(&again, err, sizeof err))
        abort();
    free(text);
    char *a = print_rule(r), *b = print_rule(&again);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "rule printed as:\n%s\nparses back as:\n%s\n", a, b);
        abort();
    }
    free(a);
    free(b);
}

static void load(unsigned prog, const char *path, const uint8_t *data, size_t size)
{
    config_t cfg;
    char err[1024];
    config_defaults(&cfg, prog);
    err[0] = '\0';
    int rc = config_load_file(&cfg, prog, path, err, sizeof err);
    if (rc) {
        size_t pl = strlen(path);
        if (strncmp(err, path, pl) != 0 || err[pl] != ':' || cfg.nrules != 0) {
            fprintf(stderr, "error without the file's name, or rules kept: %s\n", err);
            abort();
        }
        if (err[pl + 1] >= '0' && err[pl + 1] <= '9') {
            unsigned long line = strtoul(err + pl + 1, NULL, 10), lines = 1;
            for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';
            if (line < 1 || line > lines)
                abort();
        }
    } else {
        for (size_t i = 0; i < cfg.nrules; i++)
            round_trip(&cfg.rules[i]);
        static const char *const keys[] = { "http://example.com/", "http://a.example.com:8080/img/x.png?w=1",
                                            "http://[::1]/api/v1/x" };
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const policy_rule_t *r = config_rule_for_key(&cfg, keys[i], strlen(keys[i]));
            if (r && (r < cfg.rules || r >= cfg.rules + cfg.nrules))
                abort();
        }
    }
    config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = file_path();
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    load(CONFIG_EDGE, path, data, size);
    load(CONFIG_SHIELD, path, data, size);
    return 0;
}
