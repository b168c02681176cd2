package stepwait

import (
	"encoding/json"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// EnvContainers names the environment variable through which the
// kubernetes backend's worker layout tells the pod's worker (conveyor
// agent one-job) its step containers: a JSON list of Container.
const EnvContainers = "CONVEYOR_STEP_CONTAINERS"

// Container is a step container of a job's pod: it serves the steps of
// Image through the wait files in Dir, which run as the image would (its
// ENTRYPOINT and CMD, from the registry: Kubernetes does not expose them).
type Container struct {
	Image      string   `json:"image"`
	Dir        string   `json:"dir"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
}

// Argv is a step's program as the container would run it (docker run's
// rules): the step's entrypoint or the image's; the step's args, else
// the image's CMD unless the step gave an entrypoint.
func (c *Container) Argv(entrypoint, args []string) []string {
	if len(entrypoint) == 0 {
		entrypoint = c.Entrypoint
		if len(args) == 0 {
			args = c.Cmd
		}
	}
	return append(append([]string{}, entrypoint...), args...)
}

// ParseContainers reads EnvContainers' value; "" is none.
func ParseContainers(s string) ([]Container, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Container
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, errs.E("stepwait: step containers", errs.Invalid, "%v", err)
	}
	for _, c := range out {
		if c.Image == "" || !strings.HasPrefix(c.Dir, "/") {
			return nil, errs.E("stepwait: step containers", errs.Invalid, "an entry needs an image and an absolute dir: %+v", c)
		}
	}
	return out, nil
}

// FormatContainers is EnvContainers' value for cs.
func FormatContainers(cs []Container) string {
	b, _ := json.Marshal(cs) // strings only: cannot fail
	return string(b)
}
