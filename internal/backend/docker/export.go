package docker

import "time"

// CreateOptions is what ParseCreateOptions read from a workflow's
// container.options or services.*.options, for other backends that accept
// the same docker-create syntax (Kubernetes maps them onto a pod).
type CreateOptions struct {
	CPUs       float64
	Memory     int64 // bytes
	ShmSize    int64 // bytes
	Hostname   string
	User       string
	Workdir    string
	Env        []string // NAME=VALUE
	Entrypoint []string // nil: not given
	Aliases    []string
	Health     *Health // nil: no health check
}

// Health is a --health-* check.
type Health struct {
	Cmd         string // run by a shell
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// ParseCreateOptions parses a docker-create options string with the rules
// of the docker backend: unknown options and --privileged are errors.
func ParseCreateOptions(s string) (*CreateOptions, error) {
	o, err := parseOptions(s)
	if err != nil {
		return nil, err
	}
	c := &CreateOptions{
		CPUs: o.cpus, Memory: o.memory, ShmSize: o.shmSize, Hostname: o.hostname, User: o.user,
		Workdir: o.workdir, Env: o.env, Entrypoint: o.entrypoint, Aliases: o.aliases,
	}
	if h := o.health; h != nil {
		c.Health = &Health{Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		if len(h.Test) == 2 && h.Test[0] == "CMD-SHELL" {
			c.Health.Cmd = h.Test[1]
		}
	}
	return c, nil
}

// Owner is the owner label this process puts on what it makes:
// "host/pid/start" ("" when it cannot be told); see LabelOwner.
func Owner() string { return selfOwner() }

// OwnerGone reports whether an owner label names a process of this host
// that is gone (owners on other hosts are never gone from here).
func OwnerGone(owner string) bool { return orphaned(owner) }
