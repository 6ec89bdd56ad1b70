package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"
)

// deleteCommand is upstream's delete that also removes derived bundles (policy_bundle.go) of the
// deleted containers, and the kill channels (kill_fifo.go) of sandboxes that are gone. create and
// run remove their derived bundle themselves when they return; one is left only when runsc-ckpt
// died during create (killed, or a fatal exit of runsc's).
type deleteCommand struct {
	cmd.Delete
}

// Execute implements subcommands.Command.Execute.
func (d *deleteCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := args[0].(*config.Config)
	// Resolve (possibly abbreviated) ids before the state files are gone.
	var ids []string
	for _, id := range f.Args() {
		c, err := container.Load(conf.RootDir, container.FullID{ContainerID: id}, container.LoadOpts{SkipCheck: true})
		if err == nil {
			ids = append(ids, c.ID)
		}
	}
	status := d.Delete.Execute(ctx, f, args...)
	for _, id := range ids {
		if _, err := container.Load(conf.RootDir, container.FullID{ContainerID: id}, container.LoadOpts{Exact: true, SkipCheck: true}); err == nil {
			continue // not deleted
		}
		removeDerivedBundles(conf.RootDir, id)
	}
	gcKillChannels(conf.RootDir)
	return status
}

// removeDerivedBundles removes every derived bundle of container id under rootDir.
func removeDerivedBundles(rootDir, id string) {
	dirs, err := filepath.Glob(filepath.Join(rootDir, derivedBundlePrefix+id+"_*"))
	if err != nil {
		return
	}
	for _, dir := range dirs {
		if err := os.RemoveAll(dir); err != nil {
			log.Warningf("removing the derived bundle %s: %v", dir, err)
		}
	}
}
