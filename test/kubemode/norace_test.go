//go:build !race

package kubemode

// raceDetector says the tests run with the race detector (buildArgs).
const raceDetector = false
