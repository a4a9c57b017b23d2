/**
 * Binding and routing policies as json-rules-engine rules: compiled,
 * indexed so only candidates reach the engine, and explained.
 *
 * @example
 * import { BindingRules, RoutingRules } from "./mod.ts";
 * const binding = BindingRules.compile(bindingPolicies, { defaultNetwork: "default" });
 * const routing = RoutingRules.compile(routingPolicies, networks);
 * const table = await routing.reachability();
 */
export {
  BINDING_FACTS,
  BINDING_KEYED_FACTS,
  type BindingCandidate,
  type BindingDecision,
  type BindingExplanation,
  type BindingOptions,
  type BindingPolicyEvaluation,
  BindingRules,
  type BindingSubject,
  formatBindingProblems,
  NAMESPACE_NAME_LABEL,
  NoBindingPolicyError,
  podSubject,
} from "./binding.ts";
export { type AnchorKey, CandidateIndex, comparePolicies, type Ranked } from "./candidate_index.ts";
export { type ConditionOutcome, conditionOutcomes, describeFailure, describeTest } from "./conditions.ts";
export {
  type CompiledRule,
  type CoreParamFact,
  type EvaluatedCondition,
  type EvaluatedRule,
  NO_RULE_EXTENSIONS,
  PolicyEngine,
  type RuleDomain,
  type RuleExtensionSet,
} from "./engine.ts";
export { type NetworkInfo, networkInfo, NetworkLocator, type NetworkMatch } from "./network_locator.ts";
export { bindPod, endpointOwnedBy, type PodBinding } from "./pod_binding.ts";
export { ReachabilityIndex, type ReachabilityIndexOptions, reachabilityTable } from "./reachability_index.ts";
export { CORE_RULE_FACT_NAMES, CORE_RULE_OPERATOR_NAMES } from "./reserved_names.ts";
export { formatProblem as formatPolicyProblem, type PolicyProblem } from "./policy_problem.ts";
export {
  compileRoutingPolicy,
  type CompiledRoutingRule,
  formatRoutingProblems,
  type ReachabilityTable,
  type ReachEntry,
  type ReplyEntry,
  type RouteAction,
  type RouteDecision,
  type RouteExplanation,
  type RouteReason,
  type RouteTarget,
  ROUTING_FACTS,
  ROUTING_KEYED_FACTS,
  type RoutingOptions,
  type RoutingPolicyEvaluation,
  routingEngine,
  RoutingRules,
  WITHIN_PREFIXES,
} from "./routing.ts";
export { type LeafCondition, type SelectorAnchor, selectorAnchors, selectorConditions } from "./selector.ts";
export {
  ServiceBinder,
  type ServiceBinding,
  type ServiceBindingChange,
  type ServiceObject,
} from "./service_binder.ts";
