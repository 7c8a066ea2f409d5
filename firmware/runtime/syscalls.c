/*
 * syscalls.c - the system calls full newlib expects, for a bare-metal program with no heap and no
 * files: stdout and stderr go to the UART, _exit ends through tm_board_exit, everything else fails
 * with an errno. Linked in place of libnosys; the linker drops whatever nothing calls.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/times.h>

#include "tm_board.h"

#undef errno
extern int errno;

int _close(int fd);
int _fstat(int fd, struct stat *st);
int _getpid(void);
int _isatty(int fd);
int _kill(int pid, int sig);
int _lseek(int fd, int offset, int whence);
int _open(const char *path, int flags, int mode);
int _read(int fd, char *buf, int len);
int _write(int fd, const char *buf, int len);
void *_sbrk(int increment);
int _times(struct tms *t);
void _exit(int code) __attribute__((noreturn));

/* No heap: malloc returns NULL (newlib's stdio then falls back to unbuffered output). */
void *_sbrk(int increment)
{
    (void)increment;
    errno = ENOMEM;
    return (void *)-1;
}

int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    tm_board_write(buf, (uint32_t)len);
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd, (void)buf, (void)len;
    return 0;
}

int _close(int fd)
{
    (void)fd;
    errno = EBADF;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    return fd >= 0 && fd <= 2;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd, (void)offset, (void)whence;
    errno = ESPIPE;
    return -1;
}

int _open(const char *path, int flags, int mode)
{
    (void)path, (void)flags, (void)mode;
    errno = ENOSYS;
    return -1;
}

int _getpid(void)
{
    return 1;
}

int _kill(int pid, int sig)
{
    (void)pid, (void)sig;
    errno = EINVAL;
    return -1;
}

int _times(struct tms *t)
{
    (void)t;
    errno = ENOSYS;
    return -1;
}

void _exit(int code)
{
    tm_board_exit(code);
}
