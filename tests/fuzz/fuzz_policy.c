/*
 * fuzz_policy.c - libFuzzer target for the template policy
 * (render_policy.c) on hostile template files.  The first input byte
 * picks the kind (template, cancellation, notice, signature); the rest
 * is the file, as templates_load would have read it.
 *
 * Checked promises (abort() when broken):
 * - render_check_file answers TRUE or FALSE with an error, never both;
 * - a file it accepts parses back with the same safe options and holds,
 *   by this target's own walk: no script, style, iframe, object, embed,
 *   form, base, link or svg element; no on* attribute; no entity
 *   reference, processing instruction or CDATA node; no src that is not
 *   cid:; no href that starts javascript:, vbscript:, data: or file:
 *   (lower case, white space and controls removed); no style holding
 *   url(, expression or position; and every data-im value names one of
 *   the placeholders.
 *
 * TRUSTS: nothing.  Built by `make fuzz` only, with clang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "render.h"

static const char *const banned[] = { "script", "style",  "iframe", "object", "embed",
                                      "form",   "base",   "link",   "svg",    NULL };
static const char *const placeholders[]
    = { "link",    "booking", "staff",   "meeting_time", "meeting_end", "org_name",
        "dpo_email", "slogan", "contact", "unit",         NULL };

static void
must (gboolean ok)
{
  if (!ok)
    abort ();
}

/* Lower case without white space and controls. (transfer full) */
static char *
squeeze (const char *s)
{
  GString *out = g_string_new (NULL);

  for (; *s != '\0'; s++)
    if (!g_ascii_isspace (*s) && !g_ascii_iscntrl (*s))
      g_string_append_c (out, g_ascii_tolower (*s));
  return g_string_free (out, FALSE);
}

static void
check_attr (const char *name, const char *value)
{
  g_autofree char *v = squeeze (value);
  g_autofree char *n = g_ascii_strdown (name, -1);

  must (!g_str_has_prefix (n, "on"));
  if (strcmp (n, "src") == 0 || strcmp (n, "srcset") == 0 || strcmp (n, "background") == 0)
    must (g_str_has_prefix (v, "cid:"));
  if (strcmp (n, "href") == 0)
    must (!g_str_has_prefix (v, "javascript:") && !g_str_has_prefix (v, "vbscript:")
          && !g_str_has_prefix (v, "data:") && !g_str_has_prefix (v, "file:"));
  if (strcmp (n, "style") == 0)
    must (strstr (v, "url(") == NULL && strstr (v, "expression") == NULL
          && strstr (v, "position") == NULL);
  if (strcmp (name, "data-im") == 0 || strcmp (name, "data-im-block") == 0
      || strcmp (name, "data-im-absent") == 0)
    must (g_strv_contains (placeholders, value));
}

static void
check_node (const xmlNode *n)
{
  for (; n != NULL; n = n->next)
    {
      must (n->type != XML_ENTITY_REF_NODE && n->type != XML_PI_NODE
            && n->type != XML_CDATA_SECTION_NODE);
      if (n->type != XML_ELEMENT_NODE)
        continue;
      g_autofree char *lower = g_ascii_strdown ((const char *)n->name, -1);
      must (!g_strv_contains (banned, lower));
      for (const xmlAttr *a = n->properties; a != NULL; a = a->next)
        {
          xmlChar *v = xmlNodeListGetString (a->doc, a->children, 1);
          check_attr ((const char *)a->name, v ? (const char *)v : "");
          xmlFree (v);
        }
      check_node (n->children);
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;

  if (size < 1)
    return 0;
  RenderFile kind = (RenderFile)(data[0] % 4);
  const char *file = (const char *)data + 1;
  gsize len = size - 1;
  gboolean ok = render_check_file (file, len, kind, &error);

  must (ok == (error == NULL));
  if (!ok)
    return 0;
  xmlDoc *doc = xmlReadMemory (file, (int)len, NULL, NULL,
                               XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  must (doc != NULL);
  for (const xmlNode *n = doc->children; n != NULL; n = n->next)
    must (n->type != XML_PI_NODE);
  check_node (xmlDocGetRootElement (doc));
  xmlFreeDoc (doc);
  return 0;
}
