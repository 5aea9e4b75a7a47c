/* wslq doctor: the container engines --container jobs can use (see containers.h). */
#include "node/containers.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/facts.h"

static const char *const bin_dirs[] = {"/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", NULL};

/* The first bin_dirs entry holding an executable 'name' under root: 1 with its path. */
static int
find_bin(const char *root, const char *name, char *out, size_t size)
{
    for (const char *const *d = bin_dirs; *d; d++) {
        char rel[256], p[4096];
        snprintf(rel, sizeof rel, "%s/%s", *d, name);
        struct stat st;
        if (node_path(p, sizeof p, root, rel) && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
            (st.st_mode & 0111)) {
            snprintf(out, size, "%s", rel);
            return 1;
        }
    }
    return 0;
}

/* The first NVIDIA CDI spec (nvidia*.yaml / .json) in /etc/cdi or /var/run/cdi: 1 with it. */
static int
find_cdi(const char *root, char *out, size_t size)
{
    static const char *const dirs[] = {"/etc/cdi", "/var/run/cdi", NULL};
    for (const char *const *d = dirs; *d; d++) {
        char p[4096];
        DIR *dir = node_path(p, sizeof p, root, *d) ? opendir(p) : NULL;
        if (dir == NULL)
            continue;
        struct dirent *e;
        int found = 0;
        while (!found && (e = readdir(dir)) != NULL) {
            size_t n = strlen(e->d_name);
            found = strncmp(e->d_name, "nvidia", 6) == 0 &&
                    ((n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0) ||
                     (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0));
            if (found)
                snprintf(out, size, "%s/%s", *d, e->d_name);
        }
        closedir(dir);
        if (found)
            return 1;
    }
    return 0;
}

void
doctor_check_containers(doctor_report_t *r, const char *root)
{
    char podman[256] = "", docker[256] = "", cdi[512] = "", ctk[256] = "";
    int hp = find_bin(root, "podman", podman, sizeof podman);
    int hd = find_bin(root, "docker", docker, sizeof docker);
    if (!hp && !hd) {
        doctor_add(r, "oci.engine", DOCTOR_INFO,
                   "for --container jobs: apt-get install podman (or install Docker Engine)",
                   "no podman or docker: --container jobs cannot run here");
        return;
    }
    doctor_add(r, "oci.engine", DOCTOR_INFO, NULL, "%s%s%s%s%s: --container jobs use %s",
               hp ? "podman " : "", podman, hp && hd ? ", " : "", hd ? "docker " : "", docker,
               hp ? "podman" : "docker");
    int has_ctk = find_bin(root, "nvidia-ctk", ctk, sizeof ctk);
    int gpus = gpu_count(doctor_gpus(r));
    if (find_cdi(root, cdi, sizeof cdi))
        doctor_add(r, "oci.cdi", DOCTOR_PASS, NULL,
                   "NVIDIA Container Toolkit CDI spec %s: containers get the job's GPUs", cdi);
    else
        doctor_add(r, "oci.cdi", gpus > 0 ? DOCTOR_WARN : DOCTOR_INFO,
                   has_ctk ? "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"
                           : "install the NVIDIA Container Toolkit (nvidia-container-toolkit), "
                             "then: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
                   "no NVIDIA CDI spec in /etc/cdi or /var/run/cdi%s: --container jobs get no "
                   "GPU",
                   has_ctk ? "" : " and no nvidia-ctk");
}
