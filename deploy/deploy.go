// Package deploy is where scale decisions become running pods: a Deployer
// runs each revision at the number of replicas it is told and reports the
// addresses of the pods that are ready.
//
// Implementations: inprocess (HTTP servers in this process, for tests and
// benchmarks); local processes (kgate local) and Kubernetes Deployments
// come with those modes.
package deploy

import (
	"context"

	"github.com/kgate/kgate/translator/model"
)

// Deployer runs revisions' pods.
type Deployer interface {
	// Scale sets how many pods the revision ("namespace/name") should run.
	// It returns once the change is under way; pods become ready later and
	// the deployer reports that through its change notification.
	Scale(ctx context.Context, revision string, replicas int32) error
	// Ready returns the addresses of the revision's pods that are ready to
	// take requests now; a pod being stopped is not ready.
	Ready(revision string) []model.Endpoint
}
