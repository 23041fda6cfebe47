/*
 * calendar.h - the invitation's calendar entry (RFC 5545 iCalendar,
 * RFC 5546 iTIP) as the text of an invite.ics part.
 *
 * METHOD:PUBLISH, not REQUEST: REQUEST asks each ATTENDEE to answer the
 * ORGANIZER, which needs their addresses in the file and a mailbox that
 * reads the answers; PUBLISH is an entry to copy into a calendar, so the
 * file names no recipient.  The ORGANIZER that PUBLISH requires is the
 * organisation's own From address (already in the From header), never a
 * person.  A cancellation is METHOD:CANCEL with STATUS:CANCELLED, the
 * same UID and SEQUENCE one higher.
 *
 * Times are written in the organisation's zone (DTSTART;TZID=...) with
 * a VTIMEZONE built from the system's zone database for the stretch the
 * meeting lies in, so a calendar shows the same wall clock as the mail.
 *
 * SECURITY: every text value is escaped (RFC 5545 3.3.11: backslash,
 * semicolon, comma, newline) and CR and other controls are dropped, so
 * no value can add a property or a component; parameter values (CN) are
 * quoted and lose DQUOTE.  Lines are folded at 75 octets without
 * splitting a UTF-8 character.
 */
#ifndef INVITEMAIL_CALENDAR_H
#define INVITEMAIL_CALENDAR_H

#include <glib.h>

typedef struct {
  const char *uid;            /* "RANDOM@domain"; ASCII, no controls */
  guint sequence;             /* 0 first; a cancellation one higher */
  gboolean cancel;            /* METHOD:CANCEL, STATUS:CANCELLED */
  GDateTime *start;
  GDateTime *end;
  GDateTime *stamp;           /* DTSTAMP; NULL = now */
  const char *tz_name;        /* IANA zone; NULL = Europe/Stockholm */
  const char *summary;        /* one line */
  const char *description;    /* free text, newlines kept */
  const char *link;           /* LOCATION and URL; may be NULL */
  const char *organizer_name; /* the organisation */
  const char *organizer_addr; /* its From address */
  const char *lang;           /* LANGUAGE= of the texts */
} CalendarEvent;

/* The iCalendar text, lines ended by CRLF (RFC 5545 3.1). (transfer full) */
char *calendar_ics (const CalendarEvent *ev);

/* "PUBLISH" or "CANCEL", for the Content-Type's method= parameter. */
const char *calendar_method (const CalendarEvent *ev);

/* A new UID: 128 random bits in hex, "@" and domain. (transfer full) */
char *calendar_new_uid (const char *domain);

/*
 * Reads back what a cancellation needs from an invite.ics this module
 * wrote: UID, SEQUENCE, DTSTART and DTEND (as instants), SUMMARY.  FALSE
 * when the text holds no single VEVENT with a UID and both times.
 * Outputs are (transfer full).
 */
gboolean calendar_parse (const char *ics, char **uid, guint *sequence,
                         GDateTime **start, GDateTime **end, char **summary);

#endif
