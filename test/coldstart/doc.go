// Package coldstart runs the scale-from-zero path end to end, in one
// process and over real sockets: the activator holding a request for a
// revision at zero, its immediate load report reaching the LRS server, the
// autoscaler loop deciding at once, the deployer starting a pod, and the
// pod's endpoint reaching the activator over EDS.
package coldstart
