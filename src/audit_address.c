/*
 * audit_address.c - recipient addresses outside the chain (part of the
 * storage layer).
 *
 * The chain does not hold recipient addresses: its `recipients` column
 * holds, for each address, HMAC-SHA256 under a per-installation secret
 * (audit_address_key, a table of the audit file, never in the chain) of
 * the address with its domain in lower-case A-label form, in hex.  The
 * clear address lives in audit_address (hash -> address), outside the
 * chain, so erasing it (audit_erase.c) leaves every row hash, seal and
 * anchor valid.  The secret keeps the hashes from being confirmed by
 * hashing guessed addresses by someone holding only rows or an export.
 *
 * What it trusts: addresses as the daemon validated them; an address
 * whose domain does not convert to ASCII is hashed as written.
 */
#include "audit_store.h"

#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "envelope.h"

gboolean
audit_address_key_ensure (sqlite3 *db, GError **error)
{
  g_autofree char *sql = NULL;
  guint8 key[32];
  char hex[SHA256_HEX_SIZE];

  if (getrandom (key, sizeof key, 0) != (ssize_t) sizeof key)
    {
      g_set_error_literal (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                           "audit: no randomness for the address key");
      return FALSE;
    }
  hex_encode (key, 32, hex);
  explicit_bzero (key, sizeof key);
  sql = g_strdup_printf ("INSERT OR IGNORE INTO audit_address_key (id, key)"
                         " VALUES (1, '%s')", hex);
  explicit_bzero (hex, sizeof hex);
  return audit_exec (db, sql, error);
}

gboolean
audit_address_key_load (sqlite3 *db, guint8 key[32], GError **error)
{
  sqlite3_stmt *st = NULL;
  gboolean ok = FALSE;

  if (sqlite3_prepare_v2 (db, "SELECT key FROM audit_address_key WHERE"
                          " id = 1", -1, &st, NULL) == SQLITE_OK
      && sqlite3_step (st) == SQLITE_ROW)
    {
      const char *hex = (const char *) sqlite3_column_text (st, 0);
      ok = hex != NULL && strlen (hex) == 64 && audit_unhex (hex, key, 32);
    }
  sqlite3_finalize (st);
  return ok || audit_broken (error, "the audit file has no address key");
}

void
audit_address_hash (const guint8 key[32], const char *addr, char out[SHA256_HEX_SIZE])
{
  g_autofree char *n = envelope_address_normal (addr);
  guint8 md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;

  out[0] = '\0';
  if (HMAC (EVP_sha256 (), key, 32, (const guint8 *) n, strlen (n), md, &len)
      != NULL && len == 32)
    hex_encode (md, 32, out);
}

/* Addresses recur (an invite's accepted row, then one row per try), so
 * their hashes are kept for reuse; the table is emptied when full. */
#define ADDRESS_CACHE_MAX 4096

char *
audit_address_keys (const guint8 key[32], GHashTable *cache,
                    const char *recipients)
{
  g_auto (GStrv) addrs = g_strsplit (recipients, ",", -1);
  GString *out = g_string_new (NULL);

  for (char **a = addrs; *a != NULL; a++)
    {
      const char *h = cache != NULL ? g_hash_table_lookup (cache, *a) : NULL;
      char buf[SHA256_HEX_SIZE];

      if (h == NULL)
        {
          audit_address_hash (key, *a, buf);
          h = buf;
          if (cache != NULL)
            {
              if (g_hash_table_size (cache) >= ADDRESS_CACHE_MAX)
                g_hash_table_remove_all (cache);
              g_hash_table_insert (cache, g_strdup (*a), g_strdup (buf));
            }
        }
      if (out->len > 0)
        g_string_append_c (out, ',');
      g_string_append (out, h);
    }
  return g_string_free (out, FALSE);
}

/* One address to keep beside the chain, newest row naming it. */
typedef struct {
  char *clear;
  gint64 seq;
} AddressPending;

static void
address_pending_free (gpointer p)
{
  AddressPending *ap = p;

  g_free (ap->clear);
  g_free (ap);
}

GHashTable *
audit_address_pending_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                address_pending_free);
}

void
audit_address_note (GHashTable *pending, const char *clear, const char *keys,
                    gint64 seq)
{
  g_auto (GStrv) a = g_strsplit (clear, ",", -1);
  g_auto (GStrv) k = g_strsplit (keys, ",", -1);

  for (guint i = 0; a[i] != NULL && k[i] != NULL; i++)
    {
      AddressPending *ap = g_new (AddressPending, 1);

      ap->clear = g_strdup (a[i]);
      ap->seq = seq;
      g_hash_table_replace (pending, g_strdup (k[i]), ap);
    }
}

gboolean
audit_address_flush (sqlite3 *db, sqlite3_stmt **st, GHashTable *pending,
                     GError **error)
{
  GHashTableIter it;
  gpointer key, value;

  if (g_hash_table_size (pending) == 0)
    return TRUE;
  if (*st == NULL
      && sqlite3_prepare_v3 (db, "INSERT INTO audit_address (hash, address,"
                             " last_seq) VALUES (?1, ?2, ?3) ON CONFLICT"
                             " (hash) DO UPDATE SET address = excluded.address,"
                             " last_seq = excluded.last_seq, erased_ms = NULL",
                             -1, SQLITE_PREPARE_PERSISTENT, st, NULL)
         != SQLITE_OK)
    return audit_fail (db, error, "prepare address");
  g_hash_table_iter_init (&it, pending);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      const AddressPending *ap = value;
      int rc;

      sqlite3_bind_text (*st, 1, key, -1, SQLITE_STATIC);
      sqlite3_bind_text (*st, 2, ap->clear, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (*st, 3, ap->seq);
      rc = sqlite3_step (*st);
      sqlite3_reset (*st);
      sqlite3_clear_bindings (*st);
      if (rc != SQLITE_DONE)
        return audit_fail (db, error, "remember address");
    }
  return TRUE;
}

char *
audit_address_resolve (sqlite3 *db, sqlite3_stmt **st, const char *keys)
{
  g_auto (GStrv) k = g_strsplit (keys, ",", -1);
  GString *out = g_string_new (NULL);

  if (*st == NULL
      && sqlite3_prepare_v2 (db, "SELECT address, erased_ms FROM"
                             " audit_address WHERE hash = ?1", -1, st, NULL)
         != SQLITE_OK)
    *st = NULL;
  for (char **h = k; *h != NULL; h++)
    {
      const char *addr = NULL;

      if (*st != NULL)
        {
          sqlite3_bind_text (*st, 1, *h, -1, SQLITE_STATIC);
          if (sqlite3_step (*st) == SQLITE_ROW)
            addr = (const char *) sqlite3_column_text (*st, 0);
        }
      g_string_append_printf (out, "%s%s", out->len ? "," : "",
                              addr != NULL ? addr : AUDIT_ADDRESS_ERASED);
      if (*st != NULL)
        sqlite3_reset (*st);
    }
  return g_string_free (out, FALSE);
}
