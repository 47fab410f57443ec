//! The agent API of weir: events, actions, workflow and ReAct agents, memory, all durable.
