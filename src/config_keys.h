/*
 * config_keys.h - every configuration key in one table: section, name,
 * type, default, range, words, one line of help and the secret flag,
 * in the manner of Postfix's parameter tables.
 *
 * The parser (config.c) reads, checks and defaults each key from its
 * row and refuses any key without one; --check-config and
 * --print-defaults (invitemaild) show it; the digest (config_digest.c)
 * leaves secrets out by the flag; tests/unit/test_config.c checks that every
 * row is documented in man/invitemail.conf.5 with its default and shown
 * in contrib/invitemail.conf, and that neither names a key without a
 * row.  A new key is one row here, one field in Config, its man-page
 * entry and its example line.
 *
 * What it trusts: nothing; it is constant data.
 */
#ifndef INVITEMAIL_CONFIG_KEYS_H
#define INVITEMAIL_CONFIG_KEYS_H

#include <glib.h>

typedef struct ConfigKey ConfigKey;

typedef enum {
  CONFIG_TYPE_STRING,   /* char *: trimmed, non-empty UTF-8, no controls */
  CONFIG_TYPE_PATH,     /* char *: a string, relative to the file's folder */
  CONFIG_TYPE_UINT,     /* guint from min to max, times scale */
  CONFIG_TYPE_MODE,     /* guint: octal permissions, at most max, none for others */
  CONFIG_TYPE_CHOICE,   /* int: index of the word in words (any case) */
  CONFIG_TYPE_LIST,     /* char **: ';'-separated, blanks and empty items dropped */
  CONFIG_TYPE_HOOK      /* the checked string handed to hook */
} ConfigType;

/* A typed hook for a key that needs more than storing: user and group
 * names into ids.  value is already checked as a string. */
typedef gboolean (*ConfigHook) (void *cfg, const ConfigKey *key,
                                const char *value, GError **error);

struct ConfigKey {
  const char *section;
  const char *name;
  ConfigType type;
  gsize offset;            /* of the field in Config */
  const char *def;         /* the default as the file writes it, or NULL:
                            * none, or derived from another key */
  const char *shown;       /* how the man page and the example write the
                            * default when def is a build path or NULL */
  guint min, max;          /* UINT, MODE: the range */
  guint scale;             /* UINT: stored value = value * scale (0 = 1) */
  const char *const *words;  /* CHOICE */
  ConfigHook hook;         /* HOOK */
  gboolean secret;         /* the value, or the file a PATH names, is a
                            * secret: a value is never hashed (config.c
                            * collect_settings); a file's contents are
                            * compared in memory only (config_digest.c) */
  const char *help;        /* one line */
};

/* The rows, ended by one with section NULL. */
extern const ConfigKey config_keys[];

/* The number of rows. */
guint config_keys_count (void);

/* The row of section.name, or NULL. */
const ConfigKey *config_key_find (const char *section, const char *name);

/* TRUE when some row has this section. */
gboolean config_section_known (const char *section);

/* The default as documented: shown, else def, else NULL. */
const char *config_key_shown_default (const ConfigKey *key);

/* A ';'-separated list: items trimmed, empty ones dropped.
 * (transfer full, never NULL) */
char **config_split_list (const char *value);

/* Every key as an INI file at its defaults, with its help and range as
 * comments: keys without a literal default are commented out.
 * (transfer full) */
char *config_keys_print_defaults (void);

#endif
