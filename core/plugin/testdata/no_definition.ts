// A module that exports no plugin definition.
export const notAPlugin = 42;
