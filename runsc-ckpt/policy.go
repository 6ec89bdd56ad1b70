package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
	"gvisor.dev/gvisor/runsc/specutils"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

// How the checkpoint policy reaches the sentry
//
// runsc starts the sentry (`runsc-ckpt boot`, re-executed up to three times) with an empty
// environment and only runsc's own config flags, so neither an environment variable nor an extra
// global flag survives the trip. The container's OCI spec does: boot reads it from --spec-fd in
// every hop. So the global --ckpt-* flags become annotations on the spec (withPolicy, in the
// process that creates the sandbox), and the boot process turns the annotations back into a
// ckpt.Policy (installBootPolicy) before the kernel starts. create and run hand boot the bundle's
// config.json rather than their in-memory spec, so for them the annotations go into a derived
// bundle (policy_bundle.go). Annotations already in the spec win over the flags: they are the more
// specific setting. See docs/policy.md.

// Names of the global policy flags.
const (
	flagFile   = "ckpt-file"
	flagGroup  = "ckpt-group"
	flagSignal = "ckpt-signal"
	// flagBackground caps the images written in the background at once (docs/notes-pause.md).
	flagBackground = "ckpt-background"
	flagCore       = "core-pattern"
)

// policyFlags holds the values of the global policy flags after parsing.
type policyFlags struct {
	policy ckpt.Policy
	set    *flag.FlagSet // the set the flags are registered in, to tell which were given
}

// registerPolicyFlags registers --ckpt-file, --ckpt-group and --ckpt-signal in fs. The values are
// validated while parsing, so a bad value stops runsc-ckpt with the flag package's message.
func registerPolicyFlags(fs *flag.FlagSet) *policyFlags {
	pf := &policyFlags{policy: ckpt.DefaultPolicy(), set: fs}
	fs.Var(templateValue{&pf.policy.File}, flagFile,
		"checkpoint image name for SIGCKPT and sys_checkpoint(CKPT_FREEZE, -1, -1): %N name, %P pid, %U uid, %% percent; relative to the process's cwd")
	fs.Var(groupValue{&pf.policy.Group}, flagGroup,
		"gid whose members may checkpoint inside the sandbox; -1 allows any")
	fs.Var(signalValue{&pf.policy.Signal}, flagSignal,
		"signal number whose default action writes a checkpoint image (0 disables)")
	fs.Var(backgroundValue{&pf.policy.Background}, flagBackground,
		"how many checkpoint images may be written in the background at once, each holding a copy-on-write snapshot; more fail with EAGAIN; 0 writes every image with its process stopped")
	fs.Var(corePatternValue{&pf.policy.CorePattern}, flagCore,
		"core file of a process killed by SIGSEGV, SIGABRT, ...: %e name, %p pid, %u uid, %g gid, %s signal, %t time, %h hostname, %% percent; relative to the process's cwd; empty disables")
	return pf
}

// annotations returns the policy annotations for the flags that were given explicitly.
func (pf *policyFlags) annotations() map[string]string {
	all := pf.policy.Annotations()
	byFlag := map[string]string{flagFile: ckpt.AnnotationFile, flagGroup: ckpt.AnnotationGroup, flagSignal: ckpt.AnnotationSignal,
		flagBackground: ckpt.AnnotationBackground, flagCore: ckpt.AnnotationCorePattern}
	out := map[string]string{}
	pf.set.Visit(func(f *flag.Flag) {
		if key, ok := byFlag[f.Name]; ok {
			out[key] = all[key]
		}
	})
	return out
}

// applyTo adds the explicitly given policy flags to spec as annotations (keeping annotations the
// spec already has) and checks that the resulting policy is valid.
func (pf *policyFlags) applyTo(spec *specs.Spec) error {
	for key, val := range pf.annotations() {
		if _, ok := spec.Annotations[key]; ok {
			continue
		}
		if spec.Annotations == nil {
			spec.Annotations = map[string]string{}
		}
		spec.Annotations[key] = val
	}
	if _, err := ckpt.DefaultPolicy().WithAnnotations(spec.Annotations); err != nil {
		return fmt.Errorf("checkpoint policy: %w", err)
	}
	return nil
}

// policyCommand wraps a subcommand that creates a sandbox (create, run, do) so that the policy
// flags are added to the spec it starts the sandbox with. It relies on those commands caching the
// spec in FetchSpec, which cli.Run calls before Execute, and on Execute using that cached spec.
// create and run start the sandbox from <bundle>/config.json, not from the cached spec: for them,
// a flag that adds an annotation makes the command run on a derived bundle (policy_bundle.go).
type policyCommand struct {
	util.SubCommand
	flags *policyFlags

	derived *derivedBundle // the derived bundle of this invocation, if any
}

// wrap returns c wrapped in a policyCommand.
func (pf *policyFlags) wrap(c util.SubCommand) util.SubCommand {
	return &policyCommand{SubCommand: c, flags: pf}
}

// FetchSpec implements util.SubCommand.FetchSpec.
func (c *policyCommand) FetchSpec(conf *config.Config, f *flag.FlagSet) (string, *specs.Spec, error) {
	cid, spec, err := c.SubCommand.FetchSpec(conf, f)
	if err != nil || spec == nil {
		return cid, spec, err
	}
	added := c.flags.missingFrom(spec)
	if err := c.flags.applyTo(spec); err != nil {
		return cid, nil, fmt.Errorf("container %q: %w", cid, err)
	}
	bundle := f.Lookup("bundle")
	if len(added) == 0 || bundle == nil || c.derived != nil {
		// Nothing to add, or `do`, which writes the cached spec to its own bundle.
		return cid, spec, nil
	}
	if conf.Rootless && !hasRunAsRootCaps() {
		// run --rootless re-executes itself in a new user namespace (specutils.MaybeRunAsRoot)
		// and exits with the child's status; the child makes the derived bundle.
		return cid, spec, nil
	}
	if !specutils.IsRootContainer(spec) {
		// The sandbox's policy comes from its root container; it is set already.
		log.Warningf("container %q joins sandbox: the --ckpt-* flags apply only to a sandbox's root container", cid)
		return cid, spec, nil
	}
	d, err := newDerivedBundle(conf.RootDir, cid, bundle.Value.String(), spec, added)
	if err != nil {
		return cid, nil, fmt.Errorf("container %q: checkpoint policy flags: %w", cid, err)
	}
	if err := f.Set("bundle", d.dir); err != nil {
		_ = d.finish()
		return cid, nil, fmt.Errorf("container %q: pointing --bundle at %s: %w", cid, d.dir, err)
	}
	c.derived = d
	return cid, spec, nil
}

// Execute implements subcommands.Command.Execute: the wrapped command's, then the derived bundle,
// if one was made, is given back (policy_bundle.go), and the kill channels of sandboxes that are
// gone (`run` and `do` without --detach, a failed `create`) are removed (kill_fifo.go).
func (c *policyCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	status := c.SubCommand.Execute(ctx, f, args...)
	if conf, ok := args[0].(*config.Config); ok {
		gcKillChannels(conf.RootDir)
	}
	if c.derived != nil {
		if err := c.derived.finish(); err != nil {
			log.Warningf("checkpoint policy bundle %s: %v", c.derived.dir, err)
			if status == subcommands.ExitSuccess {
				return util.Errorf("container %q: checkpoint policy bundle %s: %v", c.derived.cid, c.derived.dir, err)
			}
		}
	}
	return status
}

// missingFrom returns the policy annotations of the explicitly given flags that spec does not
// have yet (those applyTo adds).
func (pf *policyFlags) missingFrom(spec *specs.Spec) map[string]string {
	out := map[string]string{}
	for key, val := range pf.annotations() {
		if _, ok := spec.Annotations[key]; !ok {
			out[key] = val
		}
	}
	return out
}

// installBootPolicy is called in the `boot` process (args are its arguments after "boot"): it
// reads the spec from --spec-fd without moving the file offset that boot itself reads from, and
// installs the policy from its annotations in package ckpt.
func installBootPolicy(bootArgs []string) error {
	p, err := bootPolicy(bootArgs)
	if err != nil {
		return err
	}
	return ckpt.SetPolicy(p)
}

// bootPolicy reads the spec from boot's --spec-fd (leaving the fd's offset as it is) and returns
// the checkpoint policy its annotations give.
func bootPolicy(bootArgs []string) (ckpt.Policy, error) {
	fd, err := specFD(bootArgs)
	if err != nil {
		return ckpt.Policy{}, err
	}
	data, err := preadAll(fd)
	if err != nil {
		return ckpt.Policy{}, fmt.Errorf("reading the spec from --spec-fd=%d: %w", fd, err)
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return ckpt.Policy{}, fmt.Errorf("decoding the spec from --spec-fd=%d: %w", fd, err)
	}
	p, err := ckpt.DefaultPolicy().WithAnnotations(spec.Annotations)
	if err != nil {
		return ckpt.Policy{}, fmt.Errorf("checkpoint policy: %w", err)
	}
	return p, nil
}

// specFD finds boot's --spec-fd argument. runsc always writes it as --spec-fd=N.
func specFD(bootArgs []string) (int, error) {
	for i, a := range bootArgs {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "spec-fd" {
			continue
		}
		if !hasVal {
			if i+1 == len(bootArgs) {
				break
			}
			val = bootArgs[i+1]
		}
		fd, err := strconv.Atoi(val)
		if err != nil || fd < 0 {
			return 0, fmt.Errorf("boot: bad --spec-fd %q", val)
		}
		return fd, nil
	}
	return 0, fmt.Errorf("boot: no --spec-fd argument")
}

// preadAll reads the whole file fd from offset 0 with pread, leaving the fd's offset alone (boot
// seeks to 0 itself, but an os.File would close the fd when collected).
func preadAll(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for off := int64(0); ; {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
}

// templateValue is a flag.Value for a validated ckpt-file template.
type templateValue struct{ p *string }

// String implements flag.Value.String.
func (v templateValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// Set implements flag.Value.Set.
func (v templateValue) Set(s string) error {
	if err := ckpt.ValidateFileTemplate(s); err != nil {
		return err
	}
	*v.p = s
	return nil
}

// Get implements flag.Getter.Get.
func (v templateValue) Get() any { return *v.p }

// groupValue is a flag.Value for a ckpt-group gid.
type groupValue struct{ p *int32 }

// String implements flag.Value.String.
func (v groupValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(int(*v.p))
}

// Set implements flag.Value.Set.
func (v groupValue) Set(s string) error {
	g, err := ckpt.ParseGroup(s)
	if err != nil {
		return err
	}
	*v.p = g
	return nil
}

// Get implements flag.Getter.Get.
func (v groupValue) Get() any { return *v.p }

// signalValue is a flag.Value for a ckpt-signal number.
type signalValue struct{ p *linux.Signal }

// String implements flag.Value.String.
func (v signalValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(int(*v.p))
}

// Set implements flag.Value.Set.
func (v signalValue) Set(s string) error {
	sig, err := ckpt.ParseSignal(s)
	if err != nil {
		return err
	}
	*v.p = sig
	return nil
}

// Get implements flag.Getter.Get.
func (v signalValue) Get() any { return *v.p }

// backgroundValue is the flag.Value of --ckpt-background.
type backgroundValue struct{ p *int32 }

// String implements flag.Value.String.
func (v backgroundValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(int(*v.p))
}

// Set implements flag.Value.Set.
func (v backgroundValue) Set(s string) error {
	n, err := ckpt.ParseBackground(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// Get implements flag.Getter.Get.
func (v backgroundValue) Get() any { return *v.p }

// corePatternValue is a flag.Value for a validated core-pattern (empty allowed: no cores).
type corePatternValue struct{ p *string }

// String implements flag.Value.String.
func (v corePatternValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// Set implements flag.Value.Set.
func (v corePatternValue) Set(s string) error {
	if err := ckpt.ValidateCorePattern(s); err != nil {
		return err
	}
	*v.p = s
	return nil
}

// Get implements flag.Getter.Get.
func (v corePatternValue) Get() any { return *v.p }
