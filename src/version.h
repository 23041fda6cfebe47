/* version.h - one place for the version string the programs print. */
#ifndef INVITEMAIL_VERSION_H
#define INVITEMAIL_VERSION_H
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
#define INVITEMAIL_VERSION_TEXT "invitemail " PACKAGE_VERSION
#endif
