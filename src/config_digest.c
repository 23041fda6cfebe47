/*
 * config_digest.c - evidence about the configuration for the audit: a
 * hash of what the file sets, and the names of the keys a reload
 * changed.  See config.h.
 *
 * What it trusts: a Config that config_load checked.  It never writes a
 * value anywhere: the hash covers the values, the list names only keys,
 * so the audit can show that and where the configuration changed
 * without holding it.  The SMTP password lives in its own file; its
 * contents are compared in memory (a changed password is named) and
 * never hashed, since a hash of a short secret could be guessed.
 */
#include "config.h"

#include <string.h>

void
config_digest (const Config *cfg, char out[SHA256_HEX_SIZE])
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  g_return_if_fail (cfg != NULL);
  for (char **s = cfg->file_settings; s != NULL && *s != NULL; s++)
    {
      g_checksum_update (sum, (const guchar *) *s, -1);
      g_checksum_update (sum, (const guchar *) "\n", 1);
    }
  g_strlcpy (out, g_checksum_get_string (sum), SHA256_HEX_SIZE);
}

/* "group.key" of a "group.key=value" entry. (transfer full) */
static char *
setting_key (const char *s)
{
  const char *eq = strchr (s, '=');

  return eq ? g_strndup (s, (gsize) (eq - s)) : g_strdup (s);
}

/* Adds to keys every key of a that b does not hold with the same value. */
static void
add_differences (char **a, char **b, GHashTable *keys)
{
  for (char **s = a; s != NULL && *s != NULL; s++)
    if (b == NULL || !g_strv_contains ((const char *const *) b, *s))
      g_hash_table_add (keys, setting_key (*s));
}

static gboolean
secret_differs (const Secret *a, const Secret *b)
{
  if (a->len != b->len || (a->value == NULL) != (b->value == NULL))
    return TRUE;
  return a->value != NULL && memcmp (a->value, b->value, a->len) != 0;
}

char *
config_changed_keys (const Config *old, const Config *new)
{
  g_autoptr (GHashTable) keys = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                       g_free, NULL);
  g_autoptr (GList) sorted = NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  g_return_val_if_fail (old != NULL && new != NULL, NULL);
  add_differences (old->file_settings, new->file_settings, keys);
  add_differences (new->file_settings, old->file_settings, keys);
  if (secret_differs (&old->smtp_password, &new->smtp_password))
    g_hash_table_add (keys, g_strdup ("smtp.password"));
  sorted = g_list_sort (g_hash_table_get_keys (keys), (GCompareFunc) strcmp);
  for (GList *l = sorted; l != NULL; l = l->next)
    g_string_append_printf (out, "%s%s", out->len ? "," : "", (char *) l->data);
  return g_string_free (g_steal_pointer (&out), FALSE);
}
