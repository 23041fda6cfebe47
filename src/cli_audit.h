/*
 * cli_audit.h - `invitemail audit COMMAND`: review of the audit log for
 * compliance staff.  list, show, export, verify, head, subject and
 * report open the audit file read-only; init, run once by the
 * administrator with the daemon stopped, is the one that writes.
 */
#ifndef INVITEMAIL_CLI_AUDIT_H
#define INVITEMAIL_CLI_AUDIT_H

/* argv[0] is "audit".  Returns an exit code from exitcodes.h. */
int cli_audit_main (int argc, char **argv);

#endif
