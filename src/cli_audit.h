/*
 * cli_audit.h - `invitemail audit list|show|export|verify`: read-only
 * review of the audit log for compliance staff.  Opens the audit file
 * read-only; never writes.
 */
#ifndef INVITEMAIL_CLI_AUDIT_H
#define INVITEMAIL_CLI_AUDIT_H

/* argv[0] is "audit".  Returns an exit code from exitcodes.h. */
int cli_audit_main (int argc, char **argv);

#endif
