import {
  DocumentNode,
  FragmentDefinitionNode,
  Kind,
  OperationDefinitionNode,
  SelectionSetNode,
} from 'graphql';

/**
 * Depth of the deepest field in an operation, following fragments (each
 * fragment is entered at most once per path, so cycles cannot loop).
 * Introspection's own fields count like any other.
 */
export function operationDepth(
  document: DocumentNode,
  operation: OperationDefinitionNode,
): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) {
      fragments.set(definition.name.value, definition);
    }
  }

  const depthOf = (set: SelectionSetNode, seen: Set<string>): number => {
    let deepest = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const below = selection.selectionSet
          ? depthOf(selection.selectionSet, seen)
          : 0;
        deepest = Math.max(deepest, 1 + below);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        deepest = Math.max(deepest, depthOf(selection.selectionSet, seen));
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (fragment && !seen.has(name)) {
          const next = new Set(seen).add(name);
          deepest = Math.max(deepest, depthOf(fragment.selectionSet, next));
        }
      }
    }

    return deepest;
  };

  return depthOf(operation.selectionSet, new Set());
}
