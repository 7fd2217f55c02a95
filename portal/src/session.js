// Who is logged in (GET /api/v1/me), shared with every view through a context.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export const SessionContext = createContext({ me: null });
export const useSession = () => useContext(SessionContext);

// The customer whose pages a customer admin or user sees: their own.
export const ownCustomer = (me) => me?.user?.customer_id ?? null;
export const isOperator = (me) => me?.role === 'operator';
export const isAdmin = (me) => me?.role === 'customer_admin' || me?.role === 'operator';
