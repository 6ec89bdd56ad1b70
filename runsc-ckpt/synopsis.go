package main

// One-line descriptions in `runsc-ckpt help` for the upstream commands runsc-ckpt wraps, saying
// which checkpoint each makes: engines (Docker, containerd, Podman) call checkpoint and restore;
// checkpt and inspect work on the per-process ELF images.

// Synopsis implements subcommands.Command.Synopsis.
func (*checkpointCommand) Synopsis() string {
	return "checkpoint a container (what engines call): gVisor's whole-sandbox state (default) or per-process ELF images (--format=elf)"
}

// Synopsis implements subcommands.Command.Synopsis.
func (*restoreCommand) Synopsis() string {
	return "restore a container from a checkpoint of either format (what engines call; the format is detected)"
}
