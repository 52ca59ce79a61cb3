/* shield: the origin-shield node: the same engine as the edge, in front
 * of an origin pool (see include/node.h and README.md). */
#include "config.h"
#include "node.h"

int main(int argc, char **argv)
{
    return node_main(CONFIG_SHIELD, "shield", argc, argv);
}
