package exec

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// sandboxSpec picks the backend and image for the job from runs-on and
// container:, through the platform mapping.
func (jr *jobRun) sandboxSpec(c *expr.Context) (*backend.JobSpec, backend.Backend, error) {
	e := jr.e
	spec := &backend.JobSpec{Resources: e.opts.Resources, Network: e.opts.Network, Runtime: e.opts.Runtime, Tenant: e.opts.Tenant}
	labels, err := jr.runsOn(c)
	if err != nil {
		return nil, nil, err
	}
	b := e.opts.Backend
	image, mapped := "", false
	for _, l := range labels {
		if img, ok := e.opts.Platforms[strings.ToLower(l)]; ok {
			image, mapped = img, true
			break
		}
	}
	if image == "-self-hosted" {
		if e.opts.Host == nil {
			return nil, nil, errs.E("runs-on", errs.Invalid, "runs-on %v maps to the host, but no host backend is available", labels)
		}
		b, image = e.opts.Host, ""
	}
	if ct := jr.job.Container; ct != nil {
		cc, err := jr.evalContainer(ct, c)
		if err != nil {
			return nil, nil, err
		}
		if cc.Image != "" {
			spec.Container = cc
			image = cc.Image
			switch {
			case b.Name() != "host":
			case e.opts.Containers != nil:
				b = e.opts.Containers
			case e.opts.Backend.Name() != "host":
				b = e.opts.Backend
			default:
				jr.notice(fmt.Sprintf("container %s is ignored: no container engine, the job runs on the host", cc.Image))
			}
		}
	}
	if image == "" && (b.Name() != "host" && b.Name() != "fake" || !mapped && foreignOS(labels)) {
		return nil, nil, errUnmapped{labels}
	}
	spec.Image = image
	if err := jr.applyProfile(spec, labels); err != nil {
		return nil, nil, err
	}
	for _, s := range jr.job.Services {
		cc, err := jr.evalContainer(&s.Container, c)
		if err != nil {
			return nil, nil, errs.Wrap("service "+s.Name, errs.Invalid, err)
		}
		spec.Services = append(spec.Services, backend.Service{Name: s.Name, Image: cc.Image, Env: cc.Env, Options: cc.Options,
			Volumes: cc.Volumes, Ports: cc.Ports, Credentials: cc.Credentials})
	}
	return spec, b, nil
}

// applyProfile puts the profile of the job's runs-on labels (the label
// config) in spec: runtime, machine type and placement.
func (jr *jobRun) applyProfile(spec *backend.JobSpec, labels []string) error {
	ch, err := jr.e.opts.Profiles.Select(labels)
	if err != nil {
		return err
	}
	if spec.Runtime, err = profiles.JobRuntime(spec.Runtime, ch); err != nil {
		return err
	}
	// A machine type replaces the limits given for every job (conveyor
	// run --cpus, --memory) that it sets.
	if ch.Resources.CPUs > 0 {
		spec.Resources.CPUs = ch.Resources.CPUs
	}
	if ch.Resources.MemoryBytes > 0 {
		spec.Resources.MemoryBytes = ch.Resources.MemoryBytes
	}
	spec.Placement = ch.Placement
	if d := ch.Describe(); d != "" {
		jr.notice(d)
	}
	return nil
}

// runsOn evaluates the job's runs-on labels.
func (jr *jobRun) runsOn(c *expr.Context) ([]string, error) {
	var labels []string
	if jr.job.RunsOn == nil {
		return nil, nil
	}
	for _, l := range jr.job.RunsOn.Labels {
		v, err := interpValue(l, c)
		if err != nil {
			return nil, errs.Wrap("runs-on", errs.Invalid, err)
		}
		if arr, ok := plan.Plain(v).([]any); ok {
			for _, x := range arr {
				labels = append(labels, expr.ToString(x))
			}
		} else {
			labels = append(labels, expr.ToString(v))
		}
	}
	return labels, nil
}

// labels is runsOn without the error (for messages).
func (jr *jobRun) labels(c *expr.Context) []string {
	l, _ := jr.runsOn(c)
	return l
}

// errUnmapped says no platform image matches a job's runs-on labels.
type errUnmapped struct{ labels []string }

func (e errUnmapped) Error() string { return fmt.Sprintf("no image for runs-on %v", e.labels) }

// reason is the one line the summary shows for the skipped job.
func (e errUnmapped) reason() string {
	l := firstOr(e.labels, "LABEL")
	if foreignOS(e.labels) {
		return fmt.Sprintf("no runner for %s; use -P %s=IMAGE (a Linux image) or -P %s=-self-hosted (this host)", l, l, l)
	}
	return fmt.Sprintf("no image for runs-on %v; use -P %s=IMAGE or -P %s=-self-hosted (this host)", e.labels, l, l)
}

// foreignOS says runs-on asks for an operating system other than this
// host's (windows-latest on Linux, macos-14 on Linux): with no platform
// mapping, no runner can take the job.
func foreignOS(labels []string) bool {
	for _, l := range labels {
		l = strings.ToLower(l)
		for goos, prefix := range map[string]string{"windows": "windows", "darwin": "macos"} {
			if strings.HasPrefix(l, prefix) && runtime.GOOS != goos {
				return true
			}
		}
	}
	return false
}

func firstOr(l []string, d string) string {
	if len(l) > 0 {
		return l[0]
	}
	return d
}

func (jr *jobRun) evalContainer(ct *workflow.Container, c *expr.Context) (*backend.Container, error) {
	img, err := interp(ct.Image, c)
	if err != nil {
		return nil, errs.Wrap("container image", errs.Invalid, err)
	}
	cc := &backend.Container{Image: strings.TrimPrefix(img, "docker://"), Env: map[string]string{}}
	for _, p := range ct.Env {
		v, err := interp(p.Value, c)
		if err != nil {
			return nil, errs.Wrap("container env "+p.Key, errs.Invalid, err)
		}
		cc.Env[p.Key] = v
	}
	if cc.Options, err = interp(ct.Options, c); err != nil {
		return nil, err
	}
	for _, v := range ct.Volumes {
		s, err := interp(v, c)
		if err != nil {
			return nil, err
		}
		cc.Volumes = append(cc.Volumes, s)
	}
	for _, v := range ct.Ports {
		s, err := interp(v, c)
		if err != nil {
			return nil, err
		}
		cc.Ports = append(cc.Ports, s)
	}
	if ct.Credentials != nil {
		u, err1 := interp(ct.Credentials.Username, c)
		p, err2 := interp(ct.Credentials.Password, c)
		if err1 != nil || err2 != nil {
			return nil, errs.E("container credentials", errs.Invalid, "cannot evaluate credentials")
		}
		if u == "" || p == "" {
			return nil, errs.E("container credentials", errs.Invalid, "credentials need a username and a password; refusing an empty one")
		}
		cc.Credentials = &backend.Credentials{Username: u, Password: p}
		jr.e.opts.Masker.Add(p)
	}
	return cc, nil
}

// sandboxPath is the sandbox's view of a path under the job directory.
func (jr *jobRun) sandboxPath(rel string) string {
	return strings.TrimSuffix(jr.box.dirs.Sandbox, "/") + "/" + filepath.ToSlash(rel)
}

// toSandbox maps a host path under the job directory to the sandbox's view.
func (jr *jobRun) toSandbox(host string) string {
	rel, err := filepath.Rel(jr.box.dirs.Host, host)
	if err != nil || strings.HasPrefix(rel, "..") {
		return host
	}
	return jr.sandboxPath(rel)
}
