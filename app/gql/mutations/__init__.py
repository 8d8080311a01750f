"""One mutation per module; `app.gql.schema` composes them into the Mutation root."""
