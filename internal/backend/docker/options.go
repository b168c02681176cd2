package docker

import (
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-units"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// createOptions is the subset of `docker create` options a workflow's
// container.options and services.*.options may use.
type createOptions struct {
	cpus       float64
	memory     int64
	hostname   string
	user       string
	workdir    string
	env        []string
	entrypoint []string // nil: not given
	aliases    []string
	health     *container.HealthConfig
	shmSize    int64
}

// parseOptions parses a docker-create options string. Unknown options are
// an error, as is --privileged: a job never gets more than its sandbox.
func parseOptions(s string) (*createOptions, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	o := &createOptions{}
	for i := 0; i < len(words); i++ {
		name, val, last, err := optionAt(words, i, s)
		if err != nil {
			return nil, err
		}
		i = last
		if err := o.set(name, val); err != nil {
			return nil, err
		}
	}
	return o, nil
}

const optionsOp = "docker: options"

// optionAt reads the option at words[i] and its value, given after "=" or
// as the next word; last is the index of the last word it used.
func optionAt(words []string, i int, s string) (name, val string, last int, err error) {
	w := words[i]
	name, val, hasVal := strings.Cut(w, "=")
	if !strings.HasPrefix(name, "-") {
		return "", "", i, errs.E(optionsOp, errs.Invalid, "unexpected argument %q in options %q", w, s)
	}
	if name == "--privileged" {
		return "", "", i, errs.E(optionsOp, errs.Invalid, "--privileged is not allowed: jobs run unprivileged")
	}
	// Every supported option takes a value.
	if !hasVal {
		if i+1 >= len(words) {
			return "", "", i, errs.E(optionsOp, errs.Invalid, "option %s needs a value", name)
		}
		i++
		val = words[i]
	}
	return name, val, i, nil
}

// set applies one option with its value.
func (o *createOptions) set(name, val string) error {
	switch name {
	case "--cpus", "--memory", "-m", "--shm-size":
		return o.setResource(name, val)
	case "--health-cmd", "--health-interval", "--health-timeout", "--health-start-period", "--health-retries":
		return o.setHealth(name, val)
	case "--hostname", "-h":
		o.hostname = val
	case "--user", "-u":
		o.user = val
	case "--workdir", "-w":
		o.workdir = val
	case "--env", "-e":
		if !strings.Contains(val, "=") {
			return errs.E(optionsOp, errs.Invalid, "--env %q: want NAME=VALUE", val)
		}
		o.env = append(o.env, val)
	case "--entrypoint":
		o.entrypoint = []string{val}
	case "--network-alias":
		o.aliases = append(o.aliases, val)
	default:
		return errs.E(optionsOp, errs.Invalid, "unsupported option %s (supported: --cpus, --memory, --shm-size, --hostname, --user, --env, --workdir, --entrypoint, --network-alias, --health-cmd, --health-interval, --health-timeout, --health-start-period, --health-retries)", name)
	}
	return nil
}

// setResource applies --cpus, --memory (-m) or --shm-size.
func (o *createOptions) setResource(name, val string) error {
	switch name {
	case "--cpus":
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || f <= 0 {
			return errs.E(optionsOp, errs.Invalid, "--cpus %q: want a positive number", val)
		}
		o.cpus = f
	case "--memory", "-m":
		n, err := units.RAMInBytes(val)
		if err != nil || n <= 0 {
			return errs.E(optionsOp, errs.Invalid, "--memory %q: want a size such as 512m", val)
		}
		o.memory = n
	case "--shm-size":
		n, err := units.RAMInBytes(val)
		if err != nil || n <= 0 {
			return errs.E(optionsOp, errs.Invalid, "--shm-size %q: want a size such as 64m", val)
		}
		o.shmSize = n
	}
	return nil
}

// setHealth applies one of the --health-* options.
func (o *createOptions) setHealth(name, val string) error {
	if o.health == nil {
		o.health = &container.HealthConfig{}
	}
	h := o.health
	switch name {
	case "--health-cmd":
		h.Test = []string{"CMD-SHELL", val}
	case "--health-retries":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return errs.E(optionsOp, errs.Invalid, "--health-retries %q: want a number", val)
		}
		h.Retries = n
	default:
		d, err := time.ParseDuration(val)
		if err != nil {
			return errs.E(optionsOp, errs.Invalid, "%s %q: %v", name, val, err)
		}
		switch name {
		case "--health-interval":
			h.Interval = d
		case "--health-timeout":
			h.Timeout = d
		case "--health-start-period":
			h.StartPeriod = d
		}
	}
	return nil
}

// splitWords splits s like a POSIX shell would, minus expansions.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else if r == '\\' && quote == '"' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]) {
				i++
				cur.WriteRune(rs[i])
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errs.E(optionsOp, errs.Invalid, "unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
