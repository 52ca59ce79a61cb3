/* version: the node's release and the git revision it was built from. */
#ifndef CDN_VERSION_H
#define CDN_VERSION_H

/* The release, bumped with each closed milestone. */
#define CDN_VERSION "0.13.0"

/* `git describe --always --dirty` of the checkout it was built from
 * (static string; "unknown" outside git). The Makefile passes it to
 * core/version.c alone, so a new revision rebuilds one file. */
const char *cdn_revision(void);

#endif
