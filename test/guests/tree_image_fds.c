/* tree_image_fds: CKPT_FREEZE_TREE with image fds (CKPT_TREE_IMAGE_FDS_SHIFT). A child sleeps; the
 * guest freezes it (a subtree freeze, the stream into the regular file "stream" in the cwd) with
 * bad image fds first, each of which must fail before anything is frozen: fd 3 not open (EBADF), a
 * pipe (EINVAL), a file that is not empty (EINVAL), the same file twice (EINVAL), a count above
 * CKPT_TREE_IMAGE_FDS_MAX and an unknown flag bit (EINVAL). Then with one empty file as fd 3 the
 * freeze succeeds: the child's image (an ELF core) is in that file, and the stream holds a SLOT
 * record (type 5, length 0) naming pid-<child>.img and no DATA record. Prints one "name=1" line a
 * check, then "ok"; exit 1 if a check failed. */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "guest.h"

static pid_t child;

/* freeze tree-freezes the child into a fresh "stream" with flags and returns the errno (0 on
 * success). */
static int freeze(long flags)
{
	int s = open("stream", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (s < 0) {
		perror("stream");
		exit(2);
	}
	at(s, 10); /* Not 3: that is the image fd. */
	s = 10;
	long r = sys_checkpoint(CKPT_FREEZE_TREE, s, child, flags);
	int e = r < 0 ? errno : 0;
	close(s);
	return e;
}

/* empty_file returns a new empty file open for reading and writing, named name. */
static int empty_file(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(name);
		exit(2);
	}
	return fd;
}

int main(void)
{
	child = fork_dying_with_parent();
	if (child == 0)
		for (;;)
			pause();
	long one = 1L << CKPT_TREE_IMAGE_FDS_SHIFT;

	close(3);
	check("not_open_ebadf", freeze(one) == EBADF);

	int p[2];
	if (pipe(p) != 0)
		exit(2);
	at(p[0], 20);
	at(p[1], 3);
	check("pipe_einval", freeze(one) == EINVAL);
	close(20);

	at(empty_file("img0"), 3);
	if (write(3, "x", 1) != 1)
		exit(2);
	check("not_empty_einval", freeze(one) == EINVAL);

	at(empty_file("img0"), 3);
	at(dup(3), 4);
	check("same_file_einval", freeze(2 * one) == EINVAL);
	close(4);
	check("too_many_einval", freeze((long)(CKPT_TREE_IMAGE_FDS_MAX + 1) << CKPT_TREE_IMAGE_FDS_SHIFT) == EINVAL);
	check("unknown_flag_einval", freeze(one | 2) == EINVAL);

	at(empty_file("img0"), 3);
	int e = freeze(one);
	check("freeze_ok", e == 0);
	if (e != 0)
		printf("freeze: %s\n", errname(e));

	unsigned char hdr[4] = {0};
	check("image_is_elf", pread(3, hdr, 4, 0) == 4 && memcmp(hdr, "\x7f" "ELF", 4) == 0);

	/* Walk the stream's records: one SLOT naming the child's image, no DATA before the manifest. */
	int s = open("stream", O_RDONLY);
	static unsigned char buf[1 << 20];
	int n = read_full(s, buf, sizeof buf);
	char want[64];
	snprintf(want, sizeof want, "pid-%d.img", (int)child);
	int slots = 0, image_data = 0, in_image = 0, ended = 0;
	for (int off = 16; off + 16 <= n && !ended;) {
		uint32_t type, name_len;
		uint64_t length;
		memcpy(&type, buf + off, 4);
		memcpy(&name_len, buf + off + 4, 4);
		memcpy(&length, buf + off + 8, 8);
		const char *name = (const char *)buf + off + 16;
		off += 16 + name_len;
		switch (type) {
		case 1:
			in_image = name_len == strlen(want) && memcmp(name, want, name_len) == 0;
			break;
		case 2:
			image_data += in_image;
			off += length;
			break;
		case 4:
			ended = 1;
			break;
		case 5:
			slots += length == 0 && name_len == strlen(want) && memcmp(name, want, name_len) == 0;
			in_image = 0;
			break;
		}
	}
	check("stream_has_slot", slots == 1 && image_data == 0 && ended);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (check_fails)
		return 1;
	printf("ok\n");
	return 0;
}
