package forge

import "testing"

func TestIsTestDelivery(t *testing.T) {
	const sha = "4f2a1c9e0b7d6a5f3e2d1c0b9a8f7e6d5c4b3a29"
	for _, tc := range []struct {
		name, forge, event, body string
		want                     bool
	}{
		{"gitea test delivery", "gitea", "push", `{"ref":"refs/heads/main","before":"` + sha + `","after":"` + sha + `"}`, true},
		{"forgejo test delivery", "forgejo", "push", `{"before":"` + sha + `","after":"` + sha + `"}`, true},
		{"gitea real push", "gitea", "push", `{"before":"0000000000000000000000000000000000000000","after":"` + sha + `"}`, false},
		{"gitea other event", "gitea", "create", `{"before":"` + sha + `","after":"` + sha + `"}`, false},
		{"github push", "github", "push", `{"before":"` + sha + `","after":"` + sha + `"}`, false},
		{"no after", "gitea", "push", `{"before":"","after":""}`, false},
		{"not json", "gitea", "push", `nope`, false},
	} {
		if got := IsTestDelivery(tc.forge, tc.event, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
