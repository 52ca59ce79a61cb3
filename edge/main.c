/* edge: the CDN edge node (see include/node.h and README.md). */
#include "config.h"
#include "node.h"

int main(int argc, char **argv)
{
    return node_main(CONFIG_EDGE, "edge", argc, argv);
}
