package activator

import (
	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/translator"
)

// loads is the activator's demand as the LRS reporter sends it: one
// cluster per revision, named after the revision's pods' load assignment
// "<ns>/<rev>/pods" (the activator's upstream), with the requests waiting
// for a pod counted in progress: they are demand the autoscaler must see,
// above all at zero pods.
func (a *Activator) loads() map[string]xdsclient.Load {
	stats := a.Stats()
	out := make(map[string]xdsclient.Load, len(stats))
	for key, s := range stats {
		out[translator.PodsName(key)] = xdsclient.Load{
			InProgress: uint64(max(s.InFlight, 0)),
			Issued:     s.Issued,
			Successful: s.Completed - s.Errors,
			Errors:     s.Errors,
		}
	}
	return out
}
