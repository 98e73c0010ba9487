// Command kgate is Knative Serving on Envoy: one binary whose subcommands run
// the control plane, print an Envoy bootstrap, and validate manifests.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kgate: "+err.Error())
		os.Exit(1)
	}
}
