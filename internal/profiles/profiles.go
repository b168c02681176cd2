// Package profiles holds sandbox profiles per runs-on label: the label
// config file (--label-config) that names machine types and gives a label
// an OCI runtime or RuntimeClass, a machine type, node labels and
// tolerations. The executor selects a job's profile from its runs-on
// labels and puts it in the job's backend.JobSpec.
//
// A job whose labels have several profiles gets their merge: labels in
// runs-on order, each setting taken from the first label that gives it;
// two labels giving different values for one setting (a runtime, a
// machine, one node label's value) is an error that names both, never a
// silent pick. Tolerations add up.
//
// It imports nothing from the server side nor from the executor.
package profiles

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Config is a label config: machine types and the profile of each
// runs-on label.
type Config struct {
	// Machines are the named machine types.
	Machines map[string]Machine
	// Labels are the profiles by runs-on label, in lower case (labels
	// match as -P's do, whatever their case).
	Labels map[string]Profile
}

// Machine is a named machine type: a job's limits (Docker) or its
// requests and limits (Kubernetes).
type Machine struct {
	CPUs        float64 // 0: not set
	MemoryBytes int64   // 0: not set
}

// Profile is what a label asks of its jobs' sandboxes.
type Profile struct {
	// Runtime is the OCI runtime (Docker --runtime) or the RuntimeClass
	// (Kubernetes runtimeClassName); "": not set.
	Runtime string
	// Machine names one of Config.Machines; "": not set.
	Machine      string
	NodeSelector map[string]string
	Tolerations  []backend.Toleration
}

// Choice is a job's merged profile.
type Choice struct {
	Runtime string
	// Machine is the machine type's name and Resources its limits (zero
	// when no label names a machine).
	Machine   string
	Resources backend.Resources
	Placement backend.Placement
	// RuntimeLabel and MachineLabel name the label that gave Runtime and
	// Machine (for messages).
	RuntimeLabel, MachineLabel string
}

// Select merges the profiles of labels (runs-on order). A nil Config
// selects nothing.
func (c *Config) Select(labels []string) (Choice, error) {
	var ch Choice
	if c == nil {
		return ch, nil
	}
	selBy := map[string]string{} // node label → the runs-on label that set it
	seen := map[string]bool{}
	for _, l := range labels {
		l = strings.ToLower(l)
		p, ok := c.Labels[l]
		if !ok || seen[l] {
			continue
		}
		seen[l] = true
		if err := pick(&ch.Runtime, &ch.RuntimeLabel, p.Runtime, l, "runtimes"); err != nil {
			return Choice{}, err
		}
		if err := pick(&ch.Machine, &ch.MachineLabel, p.Machine, l, "machine types"); err != nil {
			return Choice{}, err
		}
		for _, k := range sortedKeys(p.NodeSelector) {
			v := p.NodeSelector[k]
			if by, set := selBy[k]; set && ch.Placement.NodeSelector[k] != v {
				return Choice{}, errs.E("runs-on", errs.Invalid, "runs-on labels %q and %q ask for different values of node label %s (%q, %q); a job's labels must agree",
					by, l, k, ch.Placement.NodeSelector[k], v)
			}
			if ch.Placement.NodeSelector == nil {
				ch.Placement.NodeSelector = map[string]string{}
			}
			ch.Placement.NodeSelector[k], selBy[k] = v, l
		}
		for _, t := range p.Tolerations {
			if !slices.ContainsFunc(ch.Placement.Tolerations, func(x backend.Toleration) bool { return sameToleration(x, t) }) {
				ch.Placement.Tolerations = append(ch.Placement.Tolerations, t)
			}
		}
	}
	if ch.Machine != "" {
		m := c.Machines[ch.Machine] // Parse checked that it exists
		ch.Resources = backend.Resources{CPUs: m.CPUs, MemoryBytes: m.MemoryBytes}
	}
	return ch, nil
}

// pick sets *dst (given by label l) to v when unset; a different v is a
// conflict between the two labels.
func pick(dst, by *string, v, l, what string) error {
	switch {
	case v == "" || v == *dst:
		return nil
	case *dst == "":
		*dst, *by = v, l
		return nil
	}
	return errs.E("runs-on", errs.Invalid, "runs-on labels %q and %q ask for different %s (%q, %q); a job's labels must agree", *by, l, what, *dst, v)
}

func sameToleration(a, b backend.Toleration) bool {
	if (a.Seconds == nil) != (b.Seconds == nil) || a.Seconds != nil && *a.Seconds != *b.Seconds {
		return false
	}
	return a.Key == b.Key && a.Operator == b.Operator && a.Value == b.Value && a.Effect == b.Effect
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// JobRuntime is the runtime of a job: the one asked for every job of
// it (the repository's setting, or conveyor run --runtime) or the one of
// its labels' profile. Both set and different is an error: a runtime is
// a sandbox boundary chosen by two parties (the repository's admins and
// whoever wrote the label config), and Conveyor cannot rank runsc against
// kata-runtime or nvidia, so neither silently replaces the other.
func JobRuntime(every string, ch Choice) (string, error) {
	switch {
	case ch.Runtime == "" || ch.Runtime == every:
		return every, nil
	case every == "":
		return ch.Runtime, nil
	}
	return "", errs.E("runtime", errs.Invalid,
		"the job's runtime %q (the repository's setting, or --runtime) and runtime %q of its runs-on label %q differ; neither replaces the other: make them agree, or leave one unset",
		every, ch.Runtime, ch.RuntimeLabel)
}

// Describe is one line saying what ch sets ("" when nothing), for the
// job's log.
func (ch Choice) Describe() string {
	var parts []string
	if ch.Runtime != "" {
		parts = append(parts, fmt.Sprintf("runtime %s (label %s)", ch.Runtime, ch.RuntimeLabel))
	}
	if ch.Machine != "" {
		parts = append(parts, fmt.Sprintf("machine %s (label %s)", ch.Machine, ch.MachineLabel))
	}
	if n := len(ch.Placement.NodeSelector); n > 0 {
		var kv []string
		for _, k := range sortedKeys(ch.Placement.NodeSelector) {
			kv = append(kv, k+"="+ch.Placement.NodeSelector[k])
		}
		parts = append(parts, "node selector "+strings.Join(kv, ","))
	}
	if len(ch.Placement.Tolerations) > 0 {
		var keys []string
		for _, t := range ch.Placement.Tolerations {
			keys = append(keys, cmp.Or(t.Key, "*"))
		}
		parts = append(parts, "tolerations "+strings.Join(keys, ","))
	}
	if len(parts) == 0 {
		return ""
	}
	return "label profile: " + strings.Join(parts, ", ")
}
