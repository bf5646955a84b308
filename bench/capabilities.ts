// What the benchmark needs from the machine: root with network namespaces and nftables (the NAT
// lab), OpenSSH's sshd and client, iperf3. Shared with the test that runs `--quick`.
import { canMakeNetns, hasCommand, hasSshd, type Capability } from '../test/helpers/capability.js';

export function benchCapabilities(): Capability[] {
  return [
    canMakeNetns(),
    hasSshd(),
    hasCommand('/usr/bin/scp', 'Debian package openssh-client'),
    hasCommand('/usr/bin/iperf3', 'Debian package iperf3'),
    hasCommand('/usr/bin/ss', 'Debian package iproute2'),
  ];
}
