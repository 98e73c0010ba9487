package config

import (
	"testing"
	"time"
)

// config-network's rollout-duration is whole seconds, as Knative reads it;
// the older rolloutDuration is read too, the kebab-case key winning.
func TestParseNetworkRolloutDuration(t *testing.T) {
	tests := []struct {
		name    string
		data    map[string]string
		want    time.Duration
		wantErr string
	}{
		{name: "absent: at once"},
		{name: "seconds", data: map[string]string{"rollout-duration": "120"}, want: 2 * time.Minute},
		{name: "zero", data: map[string]string{"rollout-duration": "0"}},
		{name: "the older key", data: map[string]string{"rolloutDuration": "30"}, want: 30 * time.Second},
		{name: "the kebab-case key wins", data: map[string]string{"rolloutDuration": "30", "rollout-duration": "60"}, want: time.Minute},
		{name: "a duration is not seconds", data: map[string]string{"rollout-duration": "4s"},
			wantErr: `config-network: rollout-duration: "4s" is not a whole number of seconds from 0 to 31536000 (such as 120)`},
		{name: "negative", data: map[string]string{"rollout-duration": "-1"},
			wantErr: `config-network: rollout-duration: "-1" is not a whole number of seconds from 0 to 31536000 (such as 120)`},
		{name: "the older key named when wrong", data: map[string]string{"rolloutDuration": "soon"},
			wantErr: `config-network: rolloutDuration: "soon" is not a whole number of seconds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNetwork(tt.data)
			switch {
			case tt.wantErr != "":
				if err == nil || len(err.Error()) < len(tt.wantErr) || err.Error()[:len(tt.wantErr)] != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case n.RolloutDuration != tt.want:
				t.Errorf("RolloutDuration %v, want %v", n.RolloutDuration, tt.want)
			}
		})
	}
}
