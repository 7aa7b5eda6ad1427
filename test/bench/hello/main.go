// Command hello is the start-up yardstick of `make bench`: the smallest Go
// program that prints a line, built with the agent's own flags, against
// which `provision --version` is timed (target: at most twice as long).
package main

import "fmt"

func main() { fmt.Println("hello") }
