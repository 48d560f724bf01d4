/* Figures with gnuplot (gnuplot-nox, pngcairo terminal) run as a subprocess.
 *
 * Why gnuplot rather than PLplot: gnuplot-nox is one small Debian package
 * with the cairo PNG and SVG terminals built in, it draws the dated/multiplot
 * line charts the report needs with a few lines of script, and it runs out of
 * process, so a plotting problem can never crash or block the drst process
 * that calls the report (the last step of `drst run`). The scripts and data
 * it reads are kept next to the report, so every figure can be re-drawn or
 * restyled by hand. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error_int.h"
#include "obs/obs_int.h"

extern char **environ;

void drst_plot_quote(FILE *gp, const char *s)
{
    fputc('\'', gp);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("''", gp); /* gnuplot's escape inside single quotes */
        else if (*s != '\n')
            fputc(*s, gp);
    }
    fputc('\'', gp);
}

void drst_plot_begin(FILE *gp, const char *png, const char *title, int w, int h)
{
    fprintf(gp,
            "reset\nset terminal pngcairo size %d,%d enhanced font 'Sans,10' linewidth 1.2\n"
            "set output ",
            w, h);
    drst_plot_quote(gp, png);
    fputs("\nset title ", gp);
    drst_plot_quote(gp, title);
    fputs(" noenhanced\nset grid lc rgb '#dddddd'\nset key outside right top box opaque\n"
          "set border lc rgb '#555555'\n",
          gp);
}

drst_err_t drst_plot_run(const char *gnuplot, const char *script, const char *logpath, int *missing,
                         char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    *missing = 0;
    if (posix_spawn_file_actions_init(&fa))
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "cannot prepare gnuplot");
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {(char *)gnuplot, (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        *missing = 1;
        return drst_seterrno(err, errlen, DRST_ERR_UNSUPPORTED, rc, "cannot run '%s'", gnuplot);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "waiting for gnuplot");
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        *missing = 1;
        return drst_seterr(err, errlen, DRST_ERR_UNSUPPORTED, "'%s' not found", gnuplot);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return drst_seterr(err, errlen, DRST_ERR_IO, "gnuplot failed (exit %d); see %s",
                           WIFEXITED(st) ? WEXITSTATUS(st) : -1, logpath);
    return DRST_OK;
}
