package main

import "github.com/conveyor-ci/conveyor/internal/profiles"

// labelConfigHelp documents --label-config (conveyor run, server, agent;
// the agent's --labels already names the labels it runs).
const labelConfigHelp = "YAML file of sandbox profiles per runs-on label: runtime, machine type (cpus, memory), node selector and tolerations (see docs/kubernetes.md#label-profiles)"

// loadLabelConfig reads --label-config ("": none); a mistake in it stops
// the start with its file:line:col.
func loadLabelConfig(file string) (*profiles.Config, error) {
	if file == "" {
		return nil, nil
	}
	return profiles.Load(file)
}
