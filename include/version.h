/* version: the node's release and the git revision it was built from
 * (the Makefile passes -DCDN_GIT_REV; "unknown" outside a git checkout). */
#ifndef CDN_VERSION_H
#define CDN_VERSION_H

#define CDN_VERSION "0.13.0"

#ifndef CDN_GIT_REV
#define CDN_GIT_REV "unknown"
#endif

#endif
