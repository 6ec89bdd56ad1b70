/* obj_mapshared: MAP_SHARED mappings of named files through a freeze and a thaw.
 *
 * usage: obj_mapshared IMAGE FILE [FILE2]
 *
 * Maps FILE (created, 2 pages) MAP_SHARED read-write, writes "before" at 0 through the mapping
 * and closes the fd (only the mapping refers to the file); with FILE2 also maps it MAP_SHARED
 * read-only (FILE2 must exist with "ro:" at its start). Then freezes itself into IMAGE (fd 20)
 * and kills itself with SIGKILL. After a thaw it checks, printing key=value lines (1 = as
 * expected) and exits 0 if all are:
 *   map_data     the mapping still shows "before"
 *   map_to_file  a write through the mapping reaches the file (read(2) sees it)
 *   file_to_map  a write(2) to the file shows in the mapping
 *   ro_data, ro_follows  (with FILE2) the read-only mapping shows "ro:" and then what write(2)
 *                puts into the file */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest.h"

#define PG 4096

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE FILE [FILE2]\n", argv[0]);
		return 2;
	}
	int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 2 * PG) != 0)
		return 2;
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 2;
	close(fd);
	strcpy(m, "before");
	char *ro = NULL;
	if (argc > 3) {
		int rfd = open(argv[3], O_RDONLY);
		if (rfd < 0)
			return 2;
		ro = mmap(NULL, PG, PROT_READ, MAP_SHARED, rfd, 0);
		if (ro == MAP_FAILED)
			return 2;
		close(rfd);
	}

	at(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600), 20);
	if (freeze_fd_and_die(20) < 0)
		return 1;
	close(20);

	check("map_data", strcmp(m, "before") == 0);
	strcpy(m + 100, "after");
	char buf[16] = {0};
	fd = open(argv[2], O_RDWR);
	check("map_to_file", fd >= 0 && pread(fd, buf, 6, 100) == 6 && strcmp(buf, "after") == 0);
	check("file_to_map", fd >= 0 && pwrite(fd, "third", 6, 200) == 6 && strcmp(m + 200, "third") == 0);
	if (ro) {
		check("ro_data", memcmp(ro, "ro:", 3) == 0);
		int wfd = open(argv[3], O_WRONLY);
		check("ro_follows", wfd >= 0 && pwrite(wfd, "new", 3, 0) == 3 && memcmp(ro, "new", 3) == 0);
	}
	printf("fails=%d\n", check_fails);
	return check_fails != 0;
}
