/*
 * render_load.c - templates_load: every NAME.LANG.xhtml in
 * templates_dir, privacy-notice.LANG.xhtml, SIGNATURES_DIR/evisit.LANG.xhtml
 * and logo.png are read once (each at most TEMPLATE_MAX_BYTES or
 * LOGO_MAX_BYTES), hashed (SHA-256, for the audit), parsed and checked
 * by the template policy (render_policy.c), and kept parsed.  A
 * language whose template has no notice or no signature fails the
 * whole load: the daemon must not start without its privacy notice.
 *
 * TRUSTS: the directories come from the configuration; their files
 * are still bounded in size and checked.  Hidden files and files not
 * ending in .xhtml are ignored; any other file name must be
 * NAME.LANG.xhtml (names.h's rules).
 *
 * LIMITS: file sizes as above; the logo at most LOGO_MAX_SIDE pixels a
 * side, checked from its IHDR.
 */
#include "render_private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "names.h"

#define NOTICE_NAME    "privacy-notice"
#define SIGNATURE_NAME "evisit"
#define LOGO_FILE      "logo.png"
#define LOGO_MAX_SIDE  1000
/* The first line of a template's leading comment while its legal text
 * still waits for the organisation's approval or translator. */
#define UNAPPROVED_MARK "invitemail: translation not approved"
/* SHA-256 of the logo contrib/make-logo.py draws (it is deterministic):
 * a placeholder, not the organisation's own logo. */
#define PLACEHOLDER_LOGO_SHA256 \
  "47871f7cf4927fcd3fbef5b25b95192b532e7ba63b88e124e3fae8e4afca062b"

/*
 * Reads a regular file of at most max bytes.  The size is checked
 * before and while reading, so a huge or growing file costs at most
 * max + 1 bytes of memory.  (transfer full)
 */
static GBytes *
read_bounded (const char *path, gsize max, GError **error)
{
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

  if (fd < 0)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING, "%s: %s", path,
                   g_strerror (errno));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || (guint64) st.st_size > max)
    {
      close (fd);
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID,
                   "%s: not a regular file of at most %" G_GSIZE_FORMAT " bytes",
                   path, max);
      return NULL;
    }
  g_autofree char *buf = g_malloc (max + 1);
  gsize n = 0;
  ssize_t r = 0;
  while (n <= max && (r = read (fd, buf + n, max + 1 - n)) != 0)
    {
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        break;
      n += (gsize) r;
    }
  int saved = errno;
  close (fd);
  if (r < 0 || n > max)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID, "%s: %s", path,
                   r < 0 ? g_strerror (saved) : "file too large");
      return NULL;
    }
  return g_bytes_new (buf, n);
}

/* A comment before the root element saying UNAPPROVED_MARK: a
 * translation of the legal text that the organisation has not yet
 * approved.  Rendered all the same; --check-config warns. */
static gboolean
marked_unapproved (xmlDoc *doc)
{
  for (xmlNode *n = doc->children; n != NULL; n = n->next)
    if (n->type == XML_COMMENT_NODE && n->content != NULL
        && strstr ((const char *) n->content, UNAPPROVED_MARK) != NULL)
      return TRUE;
  return FALSE;
}

/* Reads, hashes, parses and checks one file. (transfer full) */
static Part *
part_load (const char *path, PartKind kind, gboolean is_cancel, GError **error)
{
  g_autoptr(GBytes) bytes = read_bounded (path, TEMPLATE_MAX_BYTES, error);
  if (bytes == NULL)
    return NULL;

  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autoptr(Part) part = part_parse (data, len, path, kind, is_cancel, error);
  if (part == NULL)
    return NULL;
  sha256_hex (data, len, part->sha256);
  if (marked_unapproved (part->doc))
    part->unapproved = g_strdup (path);
  return g_steal_pointer (&part);
}

/* ---- loading directories --------------------------------------------- */

/* Splits "NAME.LANG.xhtml"; FALSE when it has another shape. */
static gboolean
split_file_name (const char *file, char **name, char **lang)
{
  gsize len = strlen (file) - strlen (".xhtml");
  const char *dot = g_strrstr_len (file, (gssize) len, ".");

  if (dot == NULL || !template_name_ok (file, dot - file)
      || !lang_tag_ok (dot + 1, (gssize) (len - (gsize) (dot - file) - 1)))
    return FALSE;
  *name = g_strndup (file, (gsize) (dot - file));
  *lang = g_strndup (dot + 1, len - (gsize) (dot - file) - 1);
  return TRUE;
}

/* Where a file of a directory goes; NULL means "ignore it". */
static GHashTable *
table_for (Templates *t, gboolean signatures, const char *name, const char *lang,
           PartKind *kind, char **key)
{
  if (signatures)
    {
      *kind = PART_SIGNATURE;
      *key = g_strdup (lang);
      return strcmp (name, SIGNATURE_NAME) == 0 ? t->signatures : NULL;
    }
  *kind = strcmp (name, NOTICE_NAME) == 0 ? PART_NOTICE : PART_TEMPLATE;
  *key = *kind == PART_NOTICE ? g_strdup (lang) : g_strdup_printf ("%s.%s", name, lang);
  return *kind == PART_NOTICE ? t->notices : t->templates;
}

static gboolean
load_entry (Templates *t, const char *dir, const char *file, gboolean signatures,
            GError **error)
{
  g_autofree char *name = NULL, *lang = NULL, *key = NULL;
  g_autofree char *path = g_build_filename (dir, file, NULL);
  PartKind kind;

  if (!split_file_name (file, &name, &lang))
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID,
                   "%s: file name is not NAME.LANG.xhtml", path);
      return FALSE;
    }
  GHashTable *table = table_for (t, signatures, name, lang, &kind, &key);
  if (table == NULL)
    return TRUE;
  Part *part = part_load (path, kind,
                          kind == PART_TEMPLATE && strcmp (name, CANCEL_NAME) == 0, error);
  if (part == NULL)
    return FALSE;
  g_hash_table_replace (table, g_steal_pointer (&key), part);
  return TRUE;
}

/* Loads every *.xhtml of dir; hidden and other files are ignored. */
static gboolean
load_dir (Templates *t, const char *dir, gboolean signatures, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GDir) d = g_dir_open (dir, 0, &local);
  const char *file;

  if (d == NULL)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING, "%s", local->message);
      return FALSE;
    }
  while ((file = g_dir_read_name (d)) != NULL)
    {
      if (file[0] == '.' || !g_str_has_suffix (file, ".xhtml"))
        continue;
      if (!load_entry (t, dir, file, signatures, error))
        return FALSE;
    }
  return TRUE;
}

/* PNG signature, then IHDR first (PNG spec 5.2, 11.2.2) for the size. */
static gboolean
logo_check (Templates *t, const char *path, GError **error)
{
  static const guint8 sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  gsize len;
  const guint8 *p = g_bytes_get_data (t->logo, &len);

  if (len >= 24 && memcmp (p, sig, 8) == 0 && memcmp (p + 12, "IHDR", 4) == 0)
    {
      t->logo_width = (guint) p[16] << 24 | (guint) p[17] << 16 | (guint) p[18] << 8 | p[19];
      t->logo_height = (guint) p[20] << 24 | (guint) p[21] << 16 | (guint) p[22] << 8 | p[23];
      if (t->logo_width > 0 && t->logo_width <= LOGO_MAX_SIDE
          && t->logo_height > 0 && t->logo_height <= LOGO_MAX_SIDE)
        return TRUE;
    }
  g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID,
               "%s: not a PNG image of at most %d pixels a side", path, LOGO_MAX_SIDE);
  return FALSE;
}

static gboolean
logo_load (Templates *t, const char *signatures_dir, GError **error)
{
  g_autofree char *path = g_build_filename (signatures_dir, LOGO_FILE, NULL);

  t->logo = read_bounded (path, LOGO_MAX_BYTES, error);
  if (t->logo == NULL || !logo_check (t, path, error))
    return FALSE;
  gsize len;
  const void *data = g_bytes_get_data (t->logo, &len);
  sha256_hex (data, len, t->logo_sha256);
  return TRUE;
}

/* Every template language needs its notice and its signature. */
static gboolean
check_languages (const Templates *t, GError **error)
{
  GHashTableIter it;
  gpointer key;

  if (g_hash_table_size (t->notices) == 0)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_NO_NOTICE,
                   "no privacy notice (%s.LANG.xhtml) found", NOTICE_NAME);
      return FALSE;
    }
  if (g_hash_table_size (t->templates) == 0)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING, "no invitation template found");
      return FALSE;
    }
  g_hash_table_iter_init (&it, t->templates);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      const char *lang = strrchr (key, '.') + 1;
      if (!g_hash_table_contains (t->notices, lang))
        g_set_error (error, RENDER_ERROR, RENDER_ERROR_NO_NOTICE,
                     "template %s has no privacy notice %s.%s.xhtml",
                     (const char *) key, NOTICE_NAME, lang);
      else if (!g_hash_table_contains (t->signatures, lang))
        g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING,
                     "template %s has no signature %s.%s.xhtml",
                     (const char *) key, SIGNATURE_NAME, lang);
      else
        continue;
      return FALSE;
    }
  return TRUE;
}

Templates *
templates_load (const char *templates_dir, const char *signatures_dir, GError **error)
{
  g_return_val_if_fail (templates_dir != NULL && signatures_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr(Templates) t = g_new0 (Templates, 1);
  t->templates = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) part_free);
  t->notices = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) part_free);
  t->signatures = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) part_free);
  if (!load_dir (t, templates_dir, FALSE, error)
      || !load_dir (t, signatures_dir, TRUE, error)
      || !logo_load (t, signatures_dir, error)
      || !check_languages (t, error))
    return NULL;
  return g_steal_pointer (&t);
}

void
templates_free (Templates *t)
{
  if (t == NULL)
    return;
  g_clear_pointer (&t->templates, g_hash_table_unref);
  g_clear_pointer (&t->notices, g_hash_table_unref);
  g_clear_pointer (&t->signatures, g_hash_table_unref);
  g_clear_pointer (&t->logo, g_bytes_unref);
  g_free (t);
}

gboolean
templates_have (const Templates *t, const char *name, const char *lang)
{
  g_return_val_if_fail (t != NULL, FALSE);
  if (name == NULL || lang == NULL)
    return FALSE;

  g_autofree char *key = g_strdup_printf ("%s.%s", name, lang);
  if (strcmp (name, CANCEL_NAME) == 0)
    return FALSE;   /* sent only by invitemail cancel, never asked for */
  return g_hash_table_contains (t->templates, key)
         && g_hash_table_contains (t->notices, lang)
         && g_hash_table_contains (t->signatures, lang);
}

gboolean
templates_lookup (const char *name, const char *lang, gpointer t)
{
  return templates_have (t, name, lang);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

static void
add_unapproved (GPtrArray *out, GHashTable *parts)
{
  GHashTableIter it;
  gpointer value;
  g_autoptr(GPtrArray) paths = g_ptr_array_new ();

  g_hash_table_iter_init (&it, parts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (((const Part *) value)->unapproved != NULL)
      g_ptr_array_add (paths, ((const Part *) value)->unapproved);
  /* hash order is arbitrary; the report should not be */
  g_ptr_array_sort (paths, compare_strings);
  for (guint i = 0; i < paths->len; i++)
    g_ptr_array_add (out, g_strdup_printf ("%s: translation not yet approved by "
                                           "the organisation",
                                           (const char *) g_ptr_array_index (paths, i)));
}

GPtrArray *
templates_placeholders (const Templates *t)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  g_return_val_if_fail (t != NULL, out);
  add_unapproved (out, t->notices);
  add_unapproved (out, t->templates);
  add_unapproved (out, t->signatures);
  if (strcmp (t->logo_sha256, PLACEHOLDER_LOGO_SHA256) == 0)
    g_ptr_array_add (out, g_strdup ("logo.png is the generated placeholder logo "
                                    "(contrib/make-logo.py)"));
  return out;
}
