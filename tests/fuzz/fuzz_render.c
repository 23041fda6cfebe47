/*
 * fuzz_render.c - libFuzzer target for the renderer (render_*.c) fed
 * hostile request values.  Only a validated Invitation can reach
 * render_invitation, so the input goes through request_parse and
 * validate_invitation first (fuzz_common.c); render_plain_text is also
 * run on the raw input bytes as if they were a document.
 *
 * Checked promises (abort() when broken):
 * - a validated invitation always renders (failure is internal only);
 * - the HTML parses back as XML and holds no script, iframe, object,
 *   embed or form element, no on* attribute, and no href or src other
 *   than https:, mailto: and cid: -- so no request value became markup;
 * - the meeting link is the href of a link, exactly as validated;
 * - the privacy notice is in both the HTML and the plain text;
 * - the subject is one line.
 *
 * TRUSTS: the shipped templates.  Built by `make fuzz` only, with clang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "fuzz_common.h"

static const char *const banned[]
    = { "script", "iframe", "object", "embed", "form", "frame", "base", "link", NULL };

/* Walks the tree; counts hrefs equal to link. */
static void
check_node (xmlNode *n, const char *link, guint *link_hrefs)
{
  for (; n != NULL; n = n->next)
    {
      if (n->type != XML_ELEMENT_NODE)
        continue;
      fuzz_must (!g_strv_contains (banned, (const char *)n->name));
      for (xmlAttr *a = n->properties; a != NULL; a = a->next)
        {
          const char *name = (const char *)a->name;
          xmlChar *v = xmlNodeGetContent ((xmlNode *)a);

          fuzz_must (g_ascii_strncasecmp (name, "on", 2) != 0);
          if (strcmp (name, "href") == 0 || strcmp (name, "src") == 0)
            {
              fuzz_must (g_str_has_prefix ((char *)v, "https://")
                         || g_str_has_prefix ((char *)v, "mailto:")
                         || g_str_has_prefix ((char *)v, "cid:"));
              if (strcmp ((char *)v, link) == 0)
                (*link_hrefs)++;
            }
          xmlFree (v);
        }
      check_node (n->children, link, link_hrefs);
    }
}

static void
check_rendered (const Rendered *r, const Invitation *inv)
{
  const char *notice = fuzz_notice_text (invitation_lang (inv));
  xmlDoc *doc;
  guint link_hrefs = 0;

  fuzz_must (strchr (r->subject, '\n') == NULL && strchr (r->subject, '\r') == NULL);
  fuzz_must (g_utf8_validate (r->text, -1, NULL) && g_utf8_validate (r->html, -1, NULL));
  fuzz_must (strstr (r->text, notice) != NULL);
  fuzz_must (strstr (r->html, notice) != NULL);
  doc = xmlReadMemory (r->html, (int)strlen (r->html), "fuzz.xhtml", "UTF-8",
                       XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  fuzz_must (doc != NULL);
  check_node (xmlDocGetRootElement (doc), invitation_link (inv), &link_hrefs);
  fuzz_must (link_hrefs >= 1);
  xmlFreeDoc (doc);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *request = NULL;
  g_autoptr (Invitation) inv = fuzz_invitation (data, size, &request);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  if (inv != NULL)
    {
      g_autoptr (Rendered) r
          = render_invitation (fuzz_templates (), &fuzz_org, inv, &error);
      fuzz_must (r != NULL);
      check_rendered (r, inv);
    }
  g_clear_error (&error);
  text = render_plain_text ((const char *)data, size, &error);
  fuzz_must ((text == NULL) == (error != NULL));
  return 0;
}
