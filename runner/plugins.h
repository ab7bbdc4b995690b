/*
 * plugins.h - choosing the driver for a database URL, loading it only then.
 */
#ifndef CMIG_RUNNER_PLUGINS_H
#define CMIG_RUNNER_PLUGINS_H

#include "driver.h"

/* Finds the driver for url: the built-in SQLite driver, or a shared object
 * drivers/NAME.so searched in $CMIG_DRIVER_DIR, then next to the
 * executable (<dir>/drivers), then <dir>/../lib/cmig/drivers. *handle
 * receives the dlopen handle (NULL for built-ins); close with
 * driver_unload. Messages name the scheme only, never the URL. */
int driver_for_url(const char *url, const struct cmig_driver **out, void **handle,
                   struct cmig_err *err);
void driver_unload(void *handle);

#endif
