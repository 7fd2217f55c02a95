/* LD_PRELOAD shim for Debian's sipp 3.7.3 (linked against wolfSSL 5.7).
 * sipp attaches its TLS sockets with BIO_new_socket()+SSL_set_bio(); wolfSSL_get_fd() only
 * returns ssl->rfd, which set_bio never fills, so it returns -1 and sipp's send_nowait_tls()
 * gives up before ever calling SSL_write(). Fall back to the socket BIO's descriptor. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

void *wolfSSL_SSL_get_rbio(const void *ssl);
long wolfSSL_BIO_get_fd(void *bio, int *fd);

int wolfSSL_get_fd(const void *ssl)
{
    static int (*real_get_fd)(const void *);
    int fd = -1;

    if (!real_get_fd)
        real_get_fd = (int (*)(const void *))dlsym(RTLD_NEXT, "wolfSSL_get_fd");
    if (real_get_fd)
        fd = real_get_fd(ssl);
    if (fd < 0 && ssl) {
        void *bio = wolfSSL_SSL_get_rbio(ssl);
        if (bio)
            wolfSSL_BIO_get_fd(bio, &fd);
    }
    return fd;
}
