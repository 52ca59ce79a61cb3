/* version: the build's git revision (see include/version.h). */
#include "version.h"

#ifndef CDN_REVISION
#define CDN_REVISION "unknown"
#endif

const char *cdn_revision(void)
{
    return CDN_REVISION;
}
