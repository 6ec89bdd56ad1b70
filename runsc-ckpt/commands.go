package main

import (
	"github.com/google/subcommands"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/alias"
	"gvisor.dev/gvisor/runsc/cmd/nvproxy"
	"gvisor.dev/gvisor/runsc/cmd/profile"
	"gvisor.dev/gvisor/runsc/cmd/sentry/sentrycmd"
	"gvisor.dev/gvisor/runsc/cmd/trace"
	"gvisor.dev/gvisor/runsc/cmd/util"
)

// Command groups shown by `runsc-ckpt help`; the first five are upstream's.
const (
	userGroup       = "" // upstream runsc's OCI commands; checkpoint/restore here are what engines call
	helperGroup     = "helpers"
	debugGroup      = "debug"
	metricGroup     = "metrics"
	internalGroup   = "internal use only"
	checkpointGroup = "checkpoint (runsc-ckpt)"
)

// ckptCommands returns runsc-ckpt's own subcommands. Each command is one line here; its type lives
// in its own file of this package (e.g. inspect.go).
func ckptCommands() []util.SubCommand {
	return []util.SubCommand{
		new(Checkpt),
		new(Inspect),
		new(Squash),
	}
}

// commands returns every subcommand of runsc-ckpt with its help group, and the extra help topics.
//
// The upstream part is a copy of runsc/cli/maincli's commands() (unexported there) for the pinned
// gVisor version; keep it in sync when the pin moves. create, run and do are wrapped so that the
// checkpoint policy flags reach the sandbox as annotations (policy.go).
func commands(pf *policyFlags) (map[util.SubCommand]string, []subcommands.Command) {
	cmds := map[util.SubCommand]string{
		// Register OCI user-facing runsc commands.
		new(checkpointCommand):      userGroup, // checkpoint.go: upstream checkpoint + runc flags
		pf.wrap(new(createCommand)): userGroup, // subcontainer_stdio.go
		new(deleteCommand):          userGroup, // policy_delete.go: upstream delete + derived bundles
		new(cmd.Events):             userGroup,
		new(cmd.Exec):               userGroup,
		new(killCommand):            userGroup, // kill.go: upstream kill + checkpoint signals
		new(cmd.List):               userGroup,
		new(cmd.PS):                 userGroup,
		new(cmd.Pause):              userGroup,
		new(restoreCommand):         userGroup, // restore.go: upstream restore + runc flags
		new(cmd.Resume):             userGroup,
		pf.wrap(new(cmd.Run)):       userGroup,
		new(cmd.Spec):               userGroup,
		new(startCommand):           userGroup, // subcontainer_stdio.go
		new(cmd.State):              userGroup,
		new(cmd.Update):             userGroup,
		new(cmd.Wait):               userGroup,

		// Non-OCI user-facing runsc commands.
		pf.wrap(new(cmd.Do)):  userGroup,
		new(cmd.FSCheckpoint): userGroup,
		new(cmd.PortForward):  userGroup,
		new(cmd.Read):         userGroup,
		new(cmd.SandboxExec):  userGroup,
		new(cmd.Tar):          userGroup,

		// Helpers.
		new(installCommand):   helperGroup, // install.go: registered as runsc-ckpt
		new(cmd.Mitigate):     helperGroup,
		new(uninstallCommand): helperGroup,
		new(nvproxy.Nvproxy):  helperGroup,
		new(trace.Trace):      helperGroup,
		new(cmd.CPUFeatures):  helperGroup,
		new(cmd.Features):     helperGroup,

		new(cmd.Debug):        debugGroup,
		new(profile.Profile):  debugGroup,
		new(cmd.Statefile):    debugGroup,
		new(cmd.Symbolize):    debugGroup,
		new(cmd.Usage):        debugGroup,
		new(cmd.ReadControl):  debugGroup,
		new(cmd.WriteControl): debugGroup,

		new(cmd.MetricMetadata): metricGroup,
		new(cmd.MetricExport):   metricGroup,
		new(cmd.MetricServer):   metricGroup,

		// Internal commands.
		new(sentrycmd.Boot):   internalGroup,
		new(cmd.Gofer):        internalGroup,
		new(sentrycmd.Umount): internalGroup,
	}

	// Merge alias commands.
	for k, v := range alias.Commands() {
		cmds[k] = v
	}

	for _, c := range ckptCommands() {
		cmds[c] = checkpointGroup
	}

	helpCmds := []subcommands.Command{
		// For historical reasons, these subcommands are invoked as `runsc help
		// platforms` and `runsc help syscalls`.
		new(cmd.Platforms),
		new(cmd.Syscalls),
	}

	return cmds, helpCmds
}
