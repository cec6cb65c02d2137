/**
 * Kubernetes NetworkPolicy ingress semantics, evaluated over rendered objects, so a test can say "this pod
 * reaches that pod on that port" instead of grepping YAML. What it implements (networking.k8s.io/v1):
 * - a pod is isolated for ingress when a policy in its namespace selects it and has Ingress in its
 *   policyTypes (or no policyTypes at all); otherwise all ingress is allowed;
 * - an isolated pod admits a connection when any selecting policy has a rule whose `from` admits the
 *   source (no `from`: everyone) and whose `ports` admit the port (no `ports`: every port);
 * - a peer with podSelector only means the policy's namespace; with namespaceSelector only, every pod of
 *   the matching namespaces; with both, those pods in those namespaces; ipBlock peers are not modelled;
 * - label selectors: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); an empty
 *   selector matches everything;
 * - a named port is resolved through the destination pod's container ports.
 * Egress policies are not modelled (Kubeflow ships none).
 */

export type Labels = Readonly<Record<string, string>>;

export interface LabelSelector {
  readonly matchLabels?: Labels;
  readonly matchExpressions?: ReadonlyArray<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: readonly string[] }>;
}

interface Peer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: unknown;
}

export interface NetworkPolicy {
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec: {
    readonly podSelector: LabelSelector;
    readonly policyTypes?: readonly string[];
    readonly ingress?: ReadonlyArray<{ from?: readonly Peer[]; ports?: ReadonlyArray<{ port?: number | string; protocol?: string }> }>;
  };
}

/** A pod as the policies see it: its namespace (with that namespace's labels), labels and named ports. */
export interface PodRef {
  readonly namespace: string;
  readonly namespaceLabels: Labels;
  readonly labels: Labels;
  /** Container port name → number (for named ports in policies). */
  readonly ports?: Readonly<Record<string, number>>;
}

export function selectorMatches(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, key);
    if (operator === 'In' && !(present && values.includes(labels[key]!))) return false;
    if (operator === 'NotIn' && present && values.includes(labels[key]!)) return false;
    if (operator === 'Exists' && !present) return false;
    if (operator === 'DoesNotExist' && present) return false;
  }
  return true;
}

/** Without policyTypes a policy always governs ingress (and egress only when it has an egress section). */
function isIngressPolicy(policy: NetworkPolicy): boolean {
  return policy.spec.policyTypes === undefined || policy.spec.policyTypes.includes('Ingress');
}

function peerAdmits(peer: Peer, policyNamespace: string, source: PodRef): boolean {
  if (peer.ipBlock !== undefined) return false;
  if (peer.namespaceSelector === undefined) return source.namespace === policyNamespace && selectorMatches(peer.podSelector, source.labels);
  return selectorMatches(peer.namespaceSelector, source.namespaceLabels) && selectorMatches(peer.podSelector ?? {}, source.labels);
}

function portAdmits(ports: ReadonlyArray<{ port?: number | string }> | undefined, port: number, destination: PodRef): boolean {
  if (ports === undefined || ports.length === 0) return true;
  return ports.some((p) => p.port === undefined || p.port === port || (typeof p.port === 'string' && destination.ports?.[p.port] === port));
}

/** Whether `source` may open a TCP connection to `destination` on `port` under `policies` (all namespaces). */
export function ingressAllowed(policies: readonly NetworkPolicy[], source: PodRef, destination: PodRef, port: number): boolean {
  const selecting = policies.filter((p) => (p.metadata.namespace ?? 'default') === destination.namespace && isIngressPolicy(p) && selectorMatches(p.spec.podSelector, destination.labels));
  if (selecting.length === 0) return true;
  return selecting.some((policy) =>
    (policy.spec.ingress ?? []).some((rule) =>
      (rule.from === undefined || rule.from.length === 0 || rule.from.some((peer) => peerAdmits(peer, destination.namespace, source))) &&
      portAdmits(rule.ports, port, destination)));
}
