/*
 * names.h - the two names a request, a template folder, the config and
 * a message share: the language tag and the template name.  One rule
 * each, checked at every wall: the gate (the request's lang and
 * template), the config ([invite] default_lang), the template loader
 * (NAME.LANG.xhtml file names) and the MIME writer (Content-Language).
 *
 * A language tag here is ISO 639's 2 or 3 lowercase letters (sv, en,
 * ar, fil): a file name part and a header value that can hold nothing
 * else.  A template name is 1 to TEMPLATE_NAME_MAX of a-z 0-9 _ -,
 * starting with a letter or digit.
 */
#ifndef INVITEMAIL_NAMES_H
#define INVITEMAIL_NAMES_H

#include <glib.h>

#define LANG_TAG_MIN       2
#define LANG_TAG_MAX       3
#define TEMPLATE_NAME_MAX  64

/* len bytes of s (len < 0: up to its NUL; NULL: never) form a tag. */
gboolean lang_tag_ok (const char *s, gssize len);

/* The same for a template name. */
gboolean template_name_ok (const char *s, gssize len);

#endif
