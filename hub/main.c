/* flushout-hub: parse the flags, run the hub. */
#include "hub/config.h"
#include "hub/hub.h"

int main(int argc, char **argv)
{
    fo_hub_config cfg;
    int rc;

    fo_hub_config_default(&cfg);
    rc = fo_hub_config_parse(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    return fo_hub_run(&cfg);
}
