/* wslq doctor's container checks: oci.engine (which of podman and docker the node
 * has, the one --container jobs use) and oci.cdi (the NVIDIA Container Toolkit's CDI
 * spec, /etc/cdi/nvidia.yaml or /var/run/cdi/nvidia*.yaml|json, which gives a container the
 * job's GPUs; WARN when the node has GPUs and none). Looked up under root like the rest. */
#ifndef WSLQ_NODE_CONTAINERS_H
#define WSLQ_NODE_CONTAINERS_H

#include "node/doctor.h"

void doctor_check_containers(doctor_report_t *r, const char *root);

#endif
